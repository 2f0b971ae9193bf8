-- Daily usage rollups for GET /api/public/metrics/daily, maintained exactly by delta:
--
--   trace_usage        one row per trace: its UTC day, filter dimensions, observation count and
--                      cost, as currently projected
--   trace_model_usage  one row per trace and model (GENERATION observations only)
--   daily_traces       sums of trace_usage per (project, environment, day, dims)
--   daily_models       sums of trace_model_usage per (project, environment, day, dims, model)
--
-- For the traces a projector transaction touched, the old per-trace rows are deleted and
-- subtracted from the daily sums, and the recomputed rows inserted and added. Re-applying or
-- replaying records recomputes the same rows, so the sums never count anything twice.
-- `dims` holds the trace's filter dimensions: {"name","userId","version","release","tags"}.

CREATE TABLE trace_usage (
  project_id         TEXT             NOT NULL,
  trace_id           UUID             NOT NULL,
  environment        TEXT             NOT NULL,
  day                DATE             NOT NULL,
  dims               JSONB            NOT NULL,
  count_observations BIGINT           NOT NULL,
  total_cost         DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (project_id, trace_id)
);

CREATE TABLE trace_model_usage (
  project_id         TEXT             NOT NULL,
  trace_id           UUID             NOT NULL,
  model              TEXT             NOT NULL,
  environment        TEXT             NOT NULL,
  day                DATE             NOT NULL,
  dims               JSONB            NOT NULL,
  count_observations BIGINT           NOT NULL,
  input_usage        BIGINT           NOT NULL,
  output_usage       BIGINT           NOT NULL,
  total_usage        BIGINT           NOT NULL,
  total_cost         DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (project_id, trace_id, model)
);

CREATE TABLE daily_traces (
  project_id         TEXT             NOT NULL,
  environment        TEXT             NOT NULL,
  day                DATE             NOT NULL,
  dims               JSONB            NOT NULL,
  count_traces       BIGINT           NOT NULL,
  count_observations BIGINT           NOT NULL,
  total_cost         DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (project_id, environment, day, dims)
);
CREATE INDEX daily_traces_day_idx ON daily_traces (project_id, day DESC);

CREATE TABLE daily_models (
  project_id         TEXT             NOT NULL,
  environment        TEXT             NOT NULL,
  day                DATE             NOT NULL,
  dims               JSONB            NOT NULL,
  model              TEXT             NOT NULL,
  count_traces       BIGINT           NOT NULL,
  count_observations BIGINT           NOT NULL,
  input_usage        BIGINT           NOT NULL,
  output_usage       BIGINT           NOT NULL,
  total_usage        BIGINT           NOT NULL,
  total_cost         DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (project_id, environment, day, dims, model)
);
CREATE INDEX daily_models_day_idx ON daily_models (project_id, day DESC);
