#!/usr/bin/env bash
# Query benchmark: a generated dataset of 1M traces, 5M observations and 22M metric points, then
# p50/p99 latency of the read routes over HTTP, and the same metric queries computed from the
# raw points in SQL, in the same run.
#
#   tools/bench-query.sh [TRACES] [SECONDS_PER_QUERY]   (defaults 1000000 and 5)
#
# The dataset (tools/bench/dataset.sql) is written straight into the base tables; every rollup
# and aggregate is then recomputed by `xtrace-replay --derived`, the same code the projector
# runs. Each route is measured with wrk over one connection (sequential requests), so the
# percentiles are those of single requests. Finally the rollup answers are compared with exact
# values from the raw points.
set -euo pipefail
cd "$(dirname "$0")/.."
traces=${1:-1000000}
seconds=${2:-5}
tools/build.sh >/dev/null

port=18744
source tools/bench/lib.sh
end_ts="2026-01-31T00:00:00Z"
day_before="2026-01-30T00:00:00Z"
month_before="2026-01-01T00:00:00Z"

t0=$(date +%s.%N)
build/bin/xtrace-replay --derived --database-url "$db_url" >/dev/null  # schema on the empty db
psql "$db_url" -q -v traces="$traces" -v end_ts="'$end_ts'" -f tools/bench/dataset.sql
t1=$(date +%s.%N)
build/bin/xtrace-replay --derived --database-url "$db_url"
psql "$db_url" -qc "VACUUM ANALYZE"
t2=$(date +%s.%N)
echo "dataset: $(psql "$db_url" -tAc "SELECT (SELECT count(*) FROM traces) || ' traces, ' ||
  (SELECT count(*) FROM observations) || ' observations, ' || (SELECT count(*) FROM metric_points) ||
  ' metric points, ' || (SELECT count(*) FROM metric_rollups) || ' rollup rows'")"
printf 'generated in %.0f s, derived data recomputed in %.0f s\n' "$(echo "$t1 - $t0" | bc)" \
  "$(echo "$t2 - $t1" | bc)"

DATABASE_URL=$db_url API_BEARER_TOKEN=$XTRACE_BENCH_TOKEN BIND_ADDR=127.0.0.1:$port \
  XTRACE_WAL_DIR=$work/wal RATE_LIMIT_QPS=1000000 RATE_LIMIT_BURST=1000000 XTRACE_LOG_LEVEL=warn \
  build/bin/xtrace-server 2>>"$work/server.log" &
server_pid=$!
wait_healthy "$port"

base="http://127.0.0.1:$port"
detail_id=$(psql "$db_url" -tAc "SELECT md5('trace1000')::uuid")
json_of() { curl -sf -H "Authorization: Bearer $XTRACE_BENCH_TOKEN" "$base$1"; }
ms() {  # wrk latency such as 812.00us, 1.20ms or 2.01s, in milliseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/ && v !~ /ms$/) n *= 1000; printf "%.2f", n }'
}
echo
echo "| query | requests | p50 ms | p99 ms |"
echo "|---|---|---|---|"
measure() {  # measure NAME PATH
  json_of "$2" >/dev/null || { echo "| $1 | request failed | | |"; return; }
  local out
  out=$(wrk -t1 -c1 -d"${seconds}s" --latency -H "Authorization: Bearer $XTRACE_BENCH_TOKEN" "$base$2")
  local p50 p99 n
  p50=$(echo "$out" | awk '$1 == "50%" { print $2 }')
  p99=$(echo "$out" | awk '$1 == "99%" { print $2 }')
  n=$(echo "$out" | awk '/requests in/ { print $1 }')
  echo "| $1 | $n | $(ms "$p50") | $(ms "$p99") |"
}
measure "trace list, default" "/api/public/traces"
measure "trace list, userId" "/api/public/traces?userId=user-42"
measure "trace list, sessionId" "/api/public/traces?sessionId=session-4242"
measure "trace list, tags (all of 2)" "/api/public/traces?tags=tag-3&tags=kind-2"
measure "trace list, page 2000 of 50" "/api/public/traces?page=2000&limit=50"
measure "trace detail, 20 observations" "/api/public/traces/$detail_id"
measure "daily metrics, 30 days" "/api/public/metrics/daily?fromTimestamp=$month_before&toTimestamp=$end_ts"
q24="/api/public/metrics/query?name=gpu_util&from=$day_before&to=$end_ts&step=1m&labels=%7B%22host%22%3A%22node-3%22%7D"
measure "metrics 24h at 1m, p99, 8 series" "$q24&agg=p99"
q30="/api/public/metrics/query?name=gpu_util&from=$month_before&to=$end_ts&step=1h&group_by=host"
measure "metrics 30d at 1h, avg, group_by host (128 series)" "$q30&agg=avg"

# The same metric queries from the raw points, timed in SQL (3 runs each; best and worst shown).
raw24="SELECT s.labels, date_bin('1 minute', p.ts, 'epoch') AS b,
  percentile_disc(0.99) WITHIN GROUP (ORDER BY p.value) FROM metric_points p
  JOIN metric_series s ON s.id = p.series_id
  WHERE s.name = 'gpu_util' AND s.labels @> '{\"host\":\"node-3\"}'
    AND p.ts >= '$day_before' AND p.ts <= '$end_ts' GROUP BY 1, 2"
raw30="SELECT s.labels->>'host', date_bin('1 hour', p.ts, 'epoch') AS b, avg(p.value)
  FROM metric_points p JOIN metric_series s ON s.id = p.series_id
  WHERE s.name = 'gpu_util' AND p.ts >= '$month_before' AND p.ts <= '$end_ts' GROUP BY 1, 2"
raw_time() {  # raw_time SQL: "best / worst" of 3 runs, ms
  for _ in 1 2 3; do
    psql "$db_url" -qAt -c '\timing on' -c "$1" | awk '/^Time:/ { print $2 }'
  done | sort -n | awk 'NR == 1 { b = $1 } { w = $1 } END { printf "%.0f / %.0f", b, w }'
}
echo
echo "| metric query | from raw points, ms (best / worst of 3) |"
echo "|---|---|"
echo "| 24h at 1m, p99, 8 series | $(raw_time "$raw24") |"
echo "| 30d at 1h, avg, group_by host | $(raw_time "$raw30") |"

# Agreement: every (group, bucket) of the rollup answer against the exact value from the raw
# points, with the rank rule the API documents for percentiles (floor(q*(n-1)), 0-based).
echo
json_of "$q30&agg=avg" >"$work/avg.json"
json_of "$q24&agg=p99" >"$work/p99.json"
psql "$db_url" -qAt <<SQL
\\set avg \`cat $work/avg.json\`
\\set p99 \`cat $work/p99.json\`
WITH api AS (
  SELECT d->'labels'->>'host' AS host, (v->>'timestamp')::timestamptz AS b, (v->>'value')::float8 AS value
  FROM jsonb_array_elements((:'avg')::jsonb->'data') AS d, jsonb_array_elements(d->'values') AS v),
raw AS (
  SELECT s.labels->>'host' AS host, date_bin('1 hour', p.ts, 'epoch') AS b, avg(p.value) AS value
  FROM metric_points p JOIN metric_series s ON s.id = p.series_id
  WHERE s.name = 'gpu_util' AND p.ts >= '$month_before' AND p.ts <= '$end_ts' GROUP BY 1, 2)
SELECT 'avg 30d@1h group_by host: ' || count(*) || ' buckets compared, ' ||
       count(*) FILTER (WHERE raw.value IS NULL OR abs(api.value - raw.value) > 1e-9 * greatest(1, abs(raw.value))) ||
       ' differ (max |diff| ' || coalesce(max(abs(api.value - raw.value)), 0) || ')'
FROM api LEFT JOIN raw USING (host, b);
WITH api AS (
  SELECT d->'labels' AS labels, (v->>'timestamp')::timestamptz AS b, (v->>'value')::float8 AS value
  FROM jsonb_array_elements((:'p99')::jsonb->'data') AS d, jsonb_array_elements(d->'values') AS v),
ranked AS (
  SELECT s.labels, date_bin('1 minute', p.ts, 'epoch') AS b, p.value,
         row_number() OVER w - 1 AS r, count(*) OVER (PARTITION BY s.id, date_bin('1 minute', p.ts, 'epoch')) AS n
  FROM metric_points p JOIN metric_series s ON s.id = p.series_id
  WHERE s.name = 'gpu_util' AND s.labels @> '{"host":"node-3"}'
    AND p.ts >= '$day_before' AND p.ts <= '$end_ts'
  WINDOW w AS (PARTITION BY s.id, date_bin('1 minute', p.ts, 'epoch') ORDER BY p.value)),
raw AS (SELECT labels, b, value FROM ranked WHERE r = floor(0.99 * (n - 1)))
SELECT 'p99 24h@1m: ' || count(*) || ' buckets compared, worst relative error ' ||
       round(coalesce(max(abs(api.value - raw.value) / nullif(abs(raw.value), 0)), 0)::numeric, 5) ||
       ', ' || count(*) FILTER (WHERE raw.value IS NULL) || ' without a raw match'
FROM api LEFT JOIN raw USING (labels, b);
SQL
