-- Per-day total rows in the daily usage rollups (dims '{}'), maintained with every delta, so
-- that the unfiltered /api/public/metrics/daily reads a few rows per day instead of one per
-- distinct (name, user, version, release, tags) combination, which grows with the traces.
-- Filtered queries keep reading the per-dimension rows (real dims are never '{}').
INSERT INTO daily_traces (project_id, environment, day, dims, count_traces, count_observations,
                          total_cost)
SELECT project_id, environment, day, '{}', sum(count_traces), sum(count_observations),
       sum(total_cost)
FROM daily_traces GROUP BY project_id, environment, day;

INSERT INTO daily_models (project_id, environment, day, dims, model, count_traces,
                          count_observations, input_usage, output_usage, total_usage, total_cost)
SELECT project_id, environment, day, '{}', model, sum(count_traces), sum(count_observations),
       sum(input_usage), sum(output_usage), sum(total_usage), sum(total_cost)
FROM daily_models GROUP BY project_id, environment, day, model;

CREATE INDEX daily_traces_totals_idx ON daily_traces (project_id, day) WHERE dims = '{}';
CREATE INDEX daily_models_totals_idx ON daily_models (project_id, day) WHERE dims = '{}';
