-- Narrower metric tables, for projection speed.
--
-- * A series id is unique on its own, so points and rollups are keyed by it alone; the project
--   is reached through metric_series. Every point's key shrinks by the project text, and so does
--   the index every insert maintains.
-- * The rollup sketch becomes a compact binary form (bytea, layout in common/sketch.hpp) that
--   the projector merges in C++, instead of a jsonb object merged in SQL, which cost far more
--   per touched rollup row than inserting the points did.
--
-- Rollups are derived data: they are recreated empty here, and the projector rebuilds them from
-- metric_points before it projects anything (it does so whenever points exist but rollups do
-- not).

ALTER TABLE metric_points DROP CONSTRAINT metric_points_pkey;
ALTER TABLE metric_points DROP COLUMN project_id;
ALTER TABLE metric_points ADD PRIMARY KEY (series_id, ts);

DROP TABLE metric_rollups;
CREATE TABLE metric_rollups (
  series_id BIGINT           NOT NULL,
  step      INTEGER          NOT NULL,
  bucket    TIMESTAMPTZ      NOT NULL,
  count     BIGINT           NOT NULL,
  sum       DOUBLE PRECISION NOT NULL,
  min       DOUBLE PRECISION NOT NULL,
  max       DOUBLE PRECISION NOT NULL,
  last      DOUBLE PRECISION NOT NULL,
  last_ts   TIMESTAMPTZ      NOT NULL,
  sketch    BYTEA            NOT NULL,
  PRIMARY KEY (series_id, step, bucket)
);

DROP FUNCTION xtrace_sketch_merge(JSONB, JSONB);
DROP FUNCTION xtrace_sketch_key(DOUBLE PRECISION);

-- Bumped by whatever empties metric_series (xtrace-replay --rebuild), in the same transaction:
-- projectors cache series ids and start over when it changes (see projector/fold.hpp).
CREATE TABLE projection_epoch (
  only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
  epoch    BIGINT  NOT NULL
);
INSERT INTO projection_epoch (epoch) VALUES (0);
