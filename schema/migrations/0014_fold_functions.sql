-- Expressions that several of the projector's statements (projector/sql/*.sql) must compute
-- alike, defined once. Each is a LANGUAGE sql function of a single SELECT, neither STRICT nor
-- more volatile than its body, so that the planner inlines it: a statement plans and computes
-- exactly as with the expression written out in place.

-- Whether an event may change a stored row: the row's provenance (the WAL and position of the
-- last event applied to it, see 0005_provenance.sql) is another WAL's, unknown, or before the
-- event. An event at or before the row's position in the same WAL was applied already, so
-- re-applying records, or replaying any range, changes nothing.
CREATE FUNCTION xtrace_event_is_newer(row_wal UUID, row_seq BIGINT, event_wal UUID,
                                      event_seq BIGINT) RETURNS BOOLEAN
LANGUAGE sql IMMUTABLE AS $$
  SELECT row_wal IS DISTINCT FROM event_wal OR row_seq IS NULL OR row_seq < event_seq
$$;

-- A trace's aggregates over its stored observations: latency from the earliest start to the
-- latest end (s), the sum of their costs, and how many there are (one row, also for none). The
-- trace upsert writes a new trace with them and the derived refresh compares against them: were
-- they computed differently, the refresh would find every new trace changed and rewrite it.
CREATE FUNCTION xtrace_observation_stats(of_project TEXT, of_trace UUID)
RETURNS TABLE (latency DOUBLE PRECISION, total_cost DOUBLE PRECISION, observations BIGINT)
LANGUAGE sql STABLE AS $$
  SELECT EXTRACT(EPOCH FROM (max(o.end_time) - min(o.start_time)))::float8,
         sum(o.calculated_total_cost), count(*)
  FROM observations o WHERE o.project_id = of_project AND o.trace_id = of_trace
$$;

-- A trace's dimensions in the daily usage rollups, the same in daily_traces and daily_models so
-- that every filter selects the same traces in both.
CREATE FUNCTION xtrace_trace_dims(name TEXT, user_id TEXT, version TEXT, release TEXT,
                                  tags TEXT[]) RETURNS JSONB
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('name', name, 'userId', user_id, 'version', version,
                            'release', release, 'tags', to_jsonb(tags))
$$;
