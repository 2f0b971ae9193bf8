-- Identifiers of traces and observations become opaque text: Langfuse clients choose any string
-- ("my-request-42"), OTLP ids are hex. Every stored UUID becomes its canonical text (lowercase,
-- hyphenated), which is what the xtrace route writes from now on, so every row is kept and every
-- id reads back as before. Ingest bounds ids to 1..200 bytes without control characters.
--
-- COLLATE "C": ids compare bytewise, whatever the database's default collation. That keeps the
-- order of the canonical UUID texts the order the uuid type had (the trace list's tie-break and
-- orderBy=id), and is cheaper than a linguistic collation.
--
-- The WAL ids (src_wal, projector_cursors, projector_quarantine) are the server's own and stay
-- uuid.

-- Compares trace_id with a uuid argument: recreated below for text.
DROP FUNCTION xtrace_observation_stats(TEXT, UUID);

ALTER TABLE traces ALTER COLUMN id TYPE TEXT COLLATE "C" USING id::text;
ALTER TABLE observations
  ALTER COLUMN id TYPE TEXT COLLATE "C" USING id::text,
  ALTER COLUMN trace_id TYPE TEXT COLLATE "C" USING trace_id::text,
  ALTER COLUMN parent_observation_id TYPE TEXT COLLATE "C" USING parent_observation_id::text;
ALTER TABLE trace_usage ALTER COLUMN trace_id TYPE TEXT COLLATE "C" USING trace_id::text;
ALTER TABLE trace_model_usage ALTER COLUMN trace_id TYPE TEXT COLLATE "C" USING trace_id::text;

-- As in 0014_fold_functions.sql, for a text trace id.
CREATE FUNCTION xtrace_observation_stats(of_project TEXT, of_trace TEXT)
RETURNS TABLE (latency DOUBLE PRECISION, total_cost DOUBLE PRECISION, observations BIGINT)
LANGUAGE sql STABLE AS $$
  SELECT EXTRACT(EPOCH FROM (max(o.end_time) - min(o.start_time)))::float8,
         sum(o.calculated_total_cost), count(*)
  FROM observations o WHERE o.project_id = of_project AND o.trace_id = of_trace
$$;
