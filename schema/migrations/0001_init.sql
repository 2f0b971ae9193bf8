-- Traces and observations, shaped for the reference read API. project_id leads every key so the
-- tables can later be partitioned by time and distributed by project without a redesign.

CREATE TABLE traces (
  project_id   TEXT        NOT NULL,
  id           UUID        NOT NULL,
  "timestamp"  TIMESTAMPTZ NOT NULL,
  -- true while the row only exists because an observation named it; the real trace then
  -- replaces the placeholder's timestamp and environment.
  placeholder  BOOLEAN     NOT NULL DEFAULT FALSE,
  environment  TEXT        NOT NULL DEFAULT 'default',
  name         TEXT,
  user_id      TEXT,
  session_id   TEXT,
  release      TEXT,
  version      TEXT,
  external_id  TEXT,
  input        JSONB,
  output       JSONB,
  metadata     JSONB,
  tags         TEXT[]      NOT NULL DEFAULT '{}',
  public       BOOLEAN     NOT NULL DEFAULT FALSE,
  bookmarked   BOOLEAN     NOT NULL DEFAULT FALSE,
  latency      DOUBLE PRECISION,
  total_cost   DOUBLE PRECISION,
  created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, id)
);

-- Trace list: default order and the exact-match filters, each with the timestamp order behind it.
CREATE INDEX traces_project_ts_idx      ON traces (project_id, "timestamp" DESC, id DESC);
CREATE INDEX traces_project_user_idx    ON traces (project_id, user_id, "timestamp" DESC);
CREATE INDEX traces_project_session_idx ON traces (project_id, session_id, "timestamp" DESC);
CREATE INDEX traces_project_name_idx    ON traces (project_id, name, "timestamp" DESC);
CREATE INDEX traces_project_env_idx     ON traces (project_id, environment, "timestamp" DESC);
CREATE INDEX traces_tags_idx            ON traces USING GIN (tags);
-- Trace detail looks a trace up by id alone.
CREATE INDEX traces_id_idx              ON traces (id);

CREATE TABLE observations (
  project_id             TEXT        NOT NULL,
  id                     UUID        NOT NULL,
  trace_id               UUID        NOT NULL,
  type                   TEXT        NOT NULL DEFAULT 'GENERATION',
  environment            TEXT        NOT NULL DEFAULT 'default',
  name                   TEXT,
  start_time             TIMESTAMPTZ,
  end_time               TIMESTAMPTZ,
  completion_start_time  TIMESTAMPTZ,
  model                  TEXT,
  model_parameters       JSONB,
  input                  JSONB,
  output                 JSONB,
  usage                  JSONB,
  metadata               JSONB,
  level                  TEXT,
  status_message         TEXT,
  parent_observation_id  UUID,
  prompt_id              TEXT,
  prompt_name            TEXT,
  prompt_version         TEXT,
  model_id               TEXT,
  input_price            DOUBLE PRECISION,
  output_price           DOUBLE PRECISION,
  total_price            DOUBLE PRECISION,
  calculated_input_cost  DOUBLE PRECISION,
  calculated_output_cost DOUBLE PRECISION,
  calculated_total_cost  DOUBLE PRECISION,
  latency                DOUBLE PRECISION,
  time_to_first_token    DOUBLE PRECISION,
  completion_tokens      BIGINT,
  prompt_tokens          BIGINT,
  total_tokens           BIGINT,
  unit                   TEXT,
  created_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, id)
);

-- Trace detail and the list's observation ids.
CREATE INDEX observations_trace_idx ON observations (trace_id, start_time);

-- How far each WAL has been projected. Keyed by the WAL's id so several ingest nodes, each with
-- its own log, can project into one database.
CREATE TABLE projector_cursors (
  wal_id     UUID        PRIMARY KEY,
  seq        BIGINT      NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Metadata merge rule: objects merge key by key, recursively; any other value (or a null stored
-- value) is replaced by the newer one; a null newer value keeps the stored one.
CREATE FUNCTION xtrace_jsonb_merge(stored JSONB, incoming JSONB) RETURNS JSONB
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF incoming IS NULL THEN
    RETURN stored;
  END IF;
  IF stored IS NULL OR jsonb_typeof(stored) <> 'object' OR jsonb_typeof(incoming) <> 'object' THEN
    RETURN incoming;
  END IF;
  RETURN (
    SELECT COALESCE(jsonb_object_agg(k,
             CASE WHEN stored ? k AND incoming ? k THEN xtrace_jsonb_merge(stored -> k, incoming -> k)
                  WHEN incoming ? k THEN incoming -> k
                  ELSE stored -> k END), '{}'::jsonb)
    FROM (SELECT jsonb_object_keys(stored) UNION SELECT jsonb_object_keys(incoming)) AS keys(k));
END
$$;
