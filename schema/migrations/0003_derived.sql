-- Derived fields (API.md), for values the client did not send. Observation-level ones are
-- generated columns, so they always agree with the row's current merged values; trace-level
-- aggregates over a trace's observations are maintained by the projector (obs_* columns).

-- An integer member of a JSON object, or NULL when absent or not an integer-valued number;
-- never raises, so odd usage payloads cannot make a row unwritable.
CREATE FUNCTION xtrace_jsonb_bigint(doc JSONB, key TEXT) RETURNS BIGINT
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF doc IS NULL OR jsonb_typeof(doc) <> 'object' OR jsonb_typeof(doc -> key) <> 'number' THEN
    RETURN NULL;
  END IF;
  RETURN (doc ->> key)::numeric::bigint;
EXCEPTION WHEN others THEN
  RETURN NULL;
END
$$;

ALTER TABLE observations
  ADD COLUMN latency_d DOUBLE PRECISION GENERATED ALWAYS AS
    (COALESCE(latency, EXTRACT(EPOCH FROM (end_time - start_time))::float8)) STORED,
  ADD COLUMN time_to_first_token_d DOUBLE PRECISION GENERATED ALWAYS AS
    (COALESCE(time_to_first_token,
              EXTRACT(EPOCH FROM (completion_start_time - start_time))::float8)) STORED,
  ADD COLUMN input_tokens_d BIGINT GENERATED ALWAYS AS
    (COALESCE(prompt_tokens, xtrace_jsonb_bigint(usage, 'input'),
              xtrace_jsonb_bigint(usage, 'promptTokens'))) STORED,
  ADD COLUMN output_tokens_d BIGINT GENERATED ALWAYS AS
    (COALESCE(completion_tokens, xtrace_jsonb_bigint(usage, 'output'),
              xtrace_jsonb_bigint(usage, 'completionTokens'))) STORED,
  -- total = sent total, else usage total, else input + output (when both are known)
  ADD COLUMN total_tokens_d BIGINT GENERATED ALWAYS AS
    (COALESCE(total_tokens, xtrace_jsonb_bigint(usage, 'total'),
              xtrace_jsonb_bigint(usage, 'totalTokens'),
              COALESCE(prompt_tokens, xtrace_jsonb_bigint(usage, 'input'),
                       xtrace_jsonb_bigint(usage, 'promptTokens')) +
              COALESCE(completion_tokens, xtrace_jsonb_bigint(usage, 'output'),
                       xtrace_jsonb_bigint(usage, 'completionTokens')))) STORED;

-- Earliest observation start to latest end (s), and the sum of observation costs.
ALTER TABLE traces
  ADD COLUMN obs_latency DOUBLE PRECISION,
  ADD COLUMN obs_total_cost DOUBLE PRECISION;

-- The trace-level aggregates are recomputed from the observations of the traces a projector
-- transaction touched, so they are exact and replay-safe.
CREATE INDEX observations_project_trace_idx ON observations (project_id, trace_id);
