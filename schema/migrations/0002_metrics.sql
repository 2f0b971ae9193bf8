-- Time-series metrics. A series is the (project, environment, name, labels) identity, stored once;
-- points are keyed by (series, timestamp) so a resent point is a no-op: the first write wins.

CREATE TABLE metric_series (
  id           BIGSERIAL   NOT NULL UNIQUE,
  project_id   TEXT        NOT NULL,
  environment  TEXT        NOT NULL,
  name         TEXT        NOT NULL,
  labels       JSONB       NOT NULL DEFAULT '{}',
  created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, environment, name, labels)
);
CREATE INDEX metric_series_labels_idx ON metric_series USING GIN (labels);

CREATE TABLE metric_points (
  project_id  TEXT             NOT NULL,
  series_id   BIGINT           NOT NULL,
  ts          TIMESTAMPTZ      NOT NULL,
  value       DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (project_id, series_id, ts)
);
