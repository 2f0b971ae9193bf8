#!/usr/bin/env bash
# Ingest benchmark: wrk against a fresh xtrace-server with a private PostgreSQL, all on loopback.
#
#   tools/bench-ingest.sh [DURATION_SECONDS]   (default 10)
#
# Runs, in one go and on the same machine state:
#   1. /v1/l/batch, 1 trace + 4 observations (~3 KB), 64 connections, XTRACE_WAL_SYNC=on
#   2. the same with XTRACE_WAL_SYNC=off (unsafe; the ceiling the fsync costs against)
#   3. /v1/metrics/batch, 100 points per request, 64 connections, sync on
#   4. run 1 again with the projector idle (database unreachable), a diagnostic
# and prints a Markdown table: requests/s, events/s, p50/p99 latency, requests per fsync (group
# commit), server peak RSS, and the durable/ceiling ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
tools/build.sh >/dev/null

port=18742
source tools/bench/lib.sh

# run NAME SYNC SCRIPT PATH EVENTS_PER_REQUEST [DATABASE_URL]
run() {
  local name=$1 sync=$2 script=$3 path=$4 events=$5 url=${6:-$db_url}
  rm -rf "$work/wal"
  DATABASE_URL=$url API_BEARER_TOKEN=$XTRACE_BENCH_TOKEN BIND_ADDR=127.0.0.1:$port \
    XTRACE_WAL_DIR=$work/wal XTRACE_WAL_SYNC=$sync XTRACE_LOG_LEVEL=warn \
    build/bin/xtrace-server 2>"$work/server.log" &
  server_pid=$!
  wait_healthy "$port"
  local before commits_before records_before
  before=$(status)
  commits_before=$(echo "$before" | json_field commits)
  records_before=$(echo "$before" | json_field committedRecords)
  wrk -t2 -c64 -d"${duration}s" --latency -s "tools/bench/$script" "http://127.0.0.1:$port$path" \
    >"$work/wrk.txt"
  local after commits records rss rps p50 p99 non2xx
  after=$(status)
  commits=$(( $(echo "$after" | json_field commits) - commits_before ))
  records=$(( $(echo "$after" | json_field committedRecords) - records_before ))
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$server_pid/status")
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$work/wrk.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.txt")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.txt")
  printf '| %s | %.0f | %.0f | %s | %s | %.1f | %d | %s |\n' "$name" "$rps" \
    "$(echo "$rps * $events" | bc)" "$p50" "$p99" "$(echo "scale=2; $records / ($commits + 0.0001)" | bc)" \
    "$((rss / 1024))" "${non2xx:-0}"
  echo "$rps" >"$work/rps-$name"
}

echo "| run | requests/s | events/s | p50 | p99 | requests per fsync | peak RSS (MB) | non-2xx |"
echo "|---|---|---|---|---|---|---|---|"
run batch-sync on batch.lua /v1/l/batch 5
run batch-nosync off batch.lua /v1/l/batch 5
run metrics-sync on metrics.lua /v1/metrics/batch 100
# Diagnostic: the same durable batch load with the projector idle (database unreachable), to
# separate the cost of ingest from that of the concurrent projection on these 2 cores.
run batch-sync-no-projection on batch.lua /v1/l/batch 5 "postgresql://postgres@127.0.0.1:1/none"
echo
echo "durable / sync-off throughput: $(echo "scale=2; $(cat "$work/rps-batch-sync") / $(cat "$work/rps-batch-nosync")" | bc)"
