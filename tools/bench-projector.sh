#!/usr/bin/env bash
# Projector catch-up benchmark: fill a WAL with a backlog while PostgreSQL is out of reach, then
# start the server against a fresh database and time how long the projector takes to drain it.
#
#   tools/bench-projector.sh [FILL_SECONDS]   (default 10)
#
# The backlog is written with wrk and tools/bench/batch.lua (1 trace + 4 observations per
# record). Prints records, events, drain time, and records/s and events/s.
# BENCH_PG_LOG=1 logs every PostgreSQL statement with its duration (copied to /tmp/bench-pg.log)
# and BENCH_LOG_LEVEL=debug the projector's per-chunk timings (/tmp/bench-server.log).
set -euo pipefail
cd "$(dirname "$0")/.."
fill=${1:-10}
tools/build.sh >/dev/null

port=18743
source tools/bench/lib.sh
if [[ -n "${BENCH_PG_LOG:-}" ]]; then
  psql "$db_url" -qc "ALTER SYSTEM SET log_min_duration_statement = 0" -c "SELECT pg_reload_conf()" >/dev/null
fi
start_server() {  # start_server DATABASE_URL
  DATABASE_URL=$1 API_BEARER_TOKEN=$XTRACE_BENCH_TOKEN BIND_ADDR=127.0.0.1:$port \
    XTRACE_WAL_DIR=$work/wal XTRACE_LOG_LEVEL=${BENCH_LOG_LEVEL:-warn} build/bin/xtrace-server 2>>"$work/server.log" &
  server_pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.05; done
}

start_server "postgresql://postgres@127.0.0.1:1/none"
wrk -t2 -c64 -d"${fill}s" -s tools/bench/batch.lua "http://127.0.0.1:$port/v1/l/batch" >/dev/null
records=$(status | json_field lastSequence)
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true

start=$(date +%s.%N)
start_server "$db_url"
while :; do
  lag=$(status | grep -o '"lagRecords":[0-9]*' | cut -d: -f2)
  projected=$(status | json_field projectedSequence)
  [[ "${lag:-1}" == 0 && "${projected:-0}" -ge "$records" ]] && break
  sleep 0.2
done
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
echo "| records | events | drain seconds | records/s | events/s |"
echo "|---|---|---|---|---|"
printf '| %d | %d | %.1f | %.0f | %.0f |\n' "$records" "$((records * 5))" "$elapsed" \
  "$(echo "$records / $elapsed" | bc -l)" "$(echo "$records * 5 / $elapsed" | bc -l)"
