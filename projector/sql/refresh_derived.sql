-- Recomputes everything derived from the given traces and their observations, exactly whatever
-- order or how often records were applied (derived.cpp):
-- - the trace aggregates obs_latency and obs_total_cost (xtrace_observation_stats), written only
--   where they changed;
-- - the per-trace rows of trace_usage and the per-(trace, model) rows of trace_model_usage: the
--   old rows are deleted, the fresh ones inserted, and their difference is added to the daily
--   sums in daily_traces and daily_models, per dimensions and to each day's total row (dims
--   '{}', which unfiltered queries read).
-- All parts see the statement's snapshot, so the fresh rows take the new observation cost from
-- the aggregate computed here, not from the traces row the same statement updates.
--
-- $1 text[]  project_id  }  one element per trace
-- $2 text[]  trace_id    }
--
-- Returns the daily cells left without traces, which a statement cannot delete since it updates
-- them (drop_empty_daily_traces.sql and drop_empty_daily_models.sql do): rollup ('traces' or
-- 'models'), project_id, environment, day, dims (text), model (text, NULL for 'traces').
WITH k AS (SELECT * FROM unnest($1::text[], $2::text[]) AS k(project_id, trace_id)),
t AS MATERIALIZED (
  SELECT t.project_id, t.id, t.environment, t."timestamp", t.name, t.user_id, t.version,
         t.release, t.tags, t.total_cost, a.latency, a.observations > 0 AS has_observations,
         CASE WHEN a.observations = 0 THEN t.obs_total_cost ELSE a.total_cost END
           AS obs_total_cost,
         a.observations AS count_observations
  FROM k JOIN traces t ON t.project_id = k.project_id AND t.id = k.trace_id
  -- Per trace through the index, whatever the planner guesses of the chunk's size: a join
  -- against an aggregate of all the chunk's observations was planned as a nested loop over it.
  CROSS JOIN LATERAL xtrace_observation_stats(t.project_id, t.id) AS a),
aggregates AS (
  UPDATE traces s SET obs_latency = t.latency, obs_total_cost = t.obs_total_cost
  FROM t
  WHERE t.has_observations AND s.project_id = t.project_id AND s.id = t.id
    AND (s.obs_latency IS DISTINCT FROM t.latency
         OR s.obs_total_cost IS DISTINCT FROM t.obs_total_cost)),
old_traces AS (
  DELETE FROM trace_usage u USING k
  WHERE u.project_id = k.project_id AND u.trace_id = k.trace_id
  RETURNING u.project_id, u.environment, u.day, u.dims, u.count_observations, u.total_cost),
fresh_traces AS (
  SELECT t.project_id, t.id AS trace_id, t.environment,
         (t."timestamp" AT TIME ZONE 'UTC')::date AS day,
         xtrace_trace_dims(t.name, t.user_id, t.version, t.release, t.tags) AS dims,
         t.count_observations, COALESCE(t.total_cost, t.obs_total_cost, 0) AS total_cost
  FROM t),
inserted_traces AS (
  INSERT INTO trace_usage (project_id, trace_id, environment, day, dims, count_observations,
                           total_cost)
  SELECT project_id, trace_id, environment, day, dims, count_observations, total_cost
  FROM fresh_traces),
delta_traces AS (
  SELECT project_id, environment, day, COALESCE(dims, '{}') AS dims, sum(n) AS n,
         sum(count_observations) AS obs, sum(total_cost) AS cost
  FROM (SELECT project_id, environment, day, dims, 1 AS n, count_observations, total_cost
        FROM fresh_traces
        UNION ALL
        SELECT project_id, environment, day, dims, -1, -count_observations, -total_cost
        FROM old_traces) AS d
  GROUP BY GROUPING SETS ((project_id, environment, day, dims), (project_id, environment, day))),
daily_traces_upsert AS (
  INSERT INTO daily_traces AS r (project_id, environment, day, dims, count_traces,
                                 count_observations, total_cost)
  SELECT project_id, environment, day, dims, n, obs, cost FROM delta_traces
  ON CONFLICT (project_id, environment, day, dims) DO UPDATE SET
    count_traces       = r.count_traces + EXCLUDED.count_traces,
    count_observations = r.count_observations + EXCLUDED.count_observations,
    total_cost         = r.total_cost + EXCLUDED.total_cost
  RETURNING r.project_id, r.environment, r.day, r.dims, r.count_traces),
old_models AS (
  DELETE FROM trace_model_usage u USING k
  WHERE u.project_id = k.project_id AND u.trace_id = k.trace_id
  RETURNING u.project_id, u.model, u.environment, u.day, u.dims, u.count_observations,
            u.input_usage, u.output_usage, u.total_usage, u.total_cost),
fresh_models AS (
  SELECT t.project_id, t.id AS trace_id, m.model, t.environment,
         (t."timestamp" AT TIME ZONE 'UTC')::date AS day,
         xtrace_trace_dims(t.name, t.user_id, t.version, t.release, t.tags) AS dims,
         m.count_observations, m.input_usage, m.output_usage, m.total_usage, m.total_cost
  FROM t CROSS JOIN LATERAL (
    SELECT COALESCE(o.model, 'unknown') AS model, count(*) AS count_observations,
           COALESCE(sum(o.input_tokens_d), 0) AS input_usage,
           COALESCE(sum(o.output_tokens_d), 0) AS output_usage,
           COALESCE(sum(o.total_tokens_d), 0) AS total_usage,
           COALESCE(sum(o.calculated_total_cost), 0) AS total_cost
    FROM observations o
    WHERE o.project_id = t.project_id AND o.trace_id = t.id AND o.type = 'GENERATION'
    GROUP BY 1) AS m),
inserted_models AS (
  INSERT INTO trace_model_usage (project_id, trace_id, model, environment, day, dims,
                                 count_observations, input_usage, output_usage, total_usage,
                                 total_cost)
  SELECT project_id, trace_id, model, environment, day, dims, count_observations, input_usage,
         output_usage, total_usage, total_cost
  FROM fresh_models),
delta_models AS (
  SELECT project_id, environment, day, COALESCE(dims, '{}') AS dims, model, sum(n) AS n,
         sum(count_observations) AS obs,
         sum(input_usage) AS input, sum(output_usage) AS output, sum(total_usage) AS total,
         sum(total_cost) AS cost
  FROM (SELECT project_id, environment, day, dims, model, 1 AS n, count_observations,
               input_usage, output_usage, total_usage, total_cost FROM fresh_models
        UNION ALL
        SELECT project_id, environment, day, dims, model, -1, -count_observations,
               -input_usage, -output_usage, -total_usage, -total_cost FROM old_models) AS d
  GROUP BY GROUPING SETS ((project_id, environment, day, dims, model),
                          (project_id, environment, day, model))),
daily_models_upsert AS (
  INSERT INTO daily_models AS r (project_id, environment, day, dims, model, count_traces,
                                 count_observations, input_usage, output_usage, total_usage,
                                 total_cost)
  SELECT project_id, environment, day, dims, model, n, obs, input, output, total, cost
  FROM delta_models
  ON CONFLICT (project_id, environment, day, dims, model) DO UPDATE SET
    count_traces       = r.count_traces + EXCLUDED.count_traces,
    count_observations = r.count_observations + EXCLUDED.count_observations,
    input_usage        = r.input_usage + EXCLUDED.input_usage,
    output_usage       = r.output_usage + EXCLUDED.output_usage,
    total_usage        = r.total_usage + EXCLUDED.total_usage,
    total_cost         = r.total_cost + EXCLUDED.total_cost
  RETURNING r.project_id, r.environment, r.day, r.dims, r.model, r.count_traces)
SELECT 'traces' AS rollup, project_id, environment, day::text AS day, dims::text AS dims,
       NULL AS model
FROM daily_traces_upsert WHERE count_traces = 0
UNION ALL
SELECT 'models', project_id, environment, day::text, dims::text, model
FROM daily_models_upsert WHERE count_traces = 0
