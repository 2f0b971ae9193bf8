-- Query benchmark dataset (tools/bench-query.sh), written straight into the base tables; the
-- script then recomputes every derived table with `xtrace-replay --derived`.
--
--   psql -v traces=N -v end_ts="'2026-01-31T00:00:00Z'" -f tools/bench/dataset.sql
--
-- * traces: N over the 30 days before end_ts, project "default"; 10 names, 10k users, 200k
--   sessions, two tags each (of 20 and of 7), 10% in environment "prod".
-- * observations: 5 GENERATIONs per trace (20 for every 1000th trace), 4 models, token usage
--   and cost.
-- * metric points: gpu_util of 16 hosts x 8 GPUs, one point every 15 s for the same 30 days
--   (128 series, 22.1M points).
\set ON_ERROR_STOP on
SET synchronous_commit = off;

INSERT INTO traces (project_id, id, "timestamp", environment, name, user_id, session_id,
                    release, version, input, output, metadata, tags)
SELECT 'default',
       md5('trace' || i)::uuid,
       :end_ts::timestamptz - (i * (30 * 86400.0 / :traces)) * interval '1 second',
       CASE WHEN i % 10 = 0 THEN 'prod' ELSE 'default' END,
       'agent-' || (i % 10),
       'user-' || (i % 10000),
       'session-' || (i % 200000),
       'r' || (i % 3),
       'v' || (i % 5),
       jsonb_build_object('question', 'question number ' || i),
       jsonb_build_object('answer', 'answer number ' || i),
       jsonb_build_object('tenant', 'tenant-' || (i % 50)),
       ARRAY['tag-' || (i % 20), 'kind-' || (i % 7)]
FROM generate_series(1, :traces) AS i;

INSERT INTO observations (project_id, id, trace_id, type, environment, name, start_time,
                          end_time, model, usage, calculated_total_cost)
SELECT 'default',
       md5('obs' || i || '-' || k)::uuid,
       md5('trace' || i)::uuid,
       'GENERATION',
       CASE WHEN i % 10 = 0 THEN 'prod' ELSE 'default' END,
       'llm-call-' || k,
       t0 + k * interval '1 second',
       t0 + k * interval '1 second' + (200 + (i * 7 + k) % 1800) * interval '1 millisecond',
       (ARRAY['gpt-4o', 'gpt-4o-mini', 'claude-3-5', 'llama-3-70b'])[1 + (i + k) % 4],
       jsonb_build_object('input', 100 + (i + k) % 900, 'output', 20 + (i * k) % 300,
                          'total', 120 + (i + k) % 900 + (i * k) % 300),
       ((100 + (i + k) % 900) * 0.000002 + (20 + (i * k) % 300) * 0.000008)
FROM (SELECT i, :end_ts::timestamptz - (i * (30 * 86400.0 / :traces)) * interval '1 second' AS t0
      FROM generate_series(1, :traces) AS i) AS t,
     generate_series(1, CASE WHEN i % 1000 = 0 THEN 20 ELSE 5 END) AS k;

INSERT INTO metric_series (project_id, environment, name, labels)
SELECT 'default', 'default', 'gpu_util', jsonb_build_object('host', 'node-' || h, 'gpu', g::text)
FROM generate_series(0, 15) AS h, generate_series(0, 7) AS g;

INSERT INTO metric_points (series_id, ts, value)
SELECT s.id, ts,
       round((50 + 40 * sin(extract(epoch FROM ts) / 3600.0 + s.id) + random() * 10)::numeric,
             3)::float8
FROM metric_series s,
     generate_series(:end_ts::timestamptz - interval '30 days', :end_ts::timestamptz
                     - interval '15 seconds', interval '15 seconds') AS ts
WHERE s.name = 'gpu_util'
ORDER BY s.id, ts;
