-- A counter that every merge into metric_rollups bumps under the rollup lock (and every rebuild
-- after it empties the table). A projector keeps the cells it wrote last in memory and reuses
-- them only while the counter shows that nobody else has written since: another node, or
-- xtrace-replay.
CREATE TABLE rollup_version (
  singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
  version   BIGINT  NOT NULL
);
INSERT INTO rollup_version (version) VALUES (0);
