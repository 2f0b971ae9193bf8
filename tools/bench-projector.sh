#!/usr/bin/env bash
# Projector catch-up benchmark: fill a WAL with a backlog while PostgreSQL is out of reach, start
# the server against a fresh database, and time how long the projector takes to drain it; then,
# in the same run, time a raw COPY of the resulting rows into the same tables for comparison.
#
#   tools/bench-projector.sh [BATCH_SECONDS] [METRICS_SECONDS]   (defaults 10 and 0)
#
# The backlog is written with wrk: tools/bench/batch.lua (1 trace + 4 observations per record)
# for BATCH_SECONDS, then tools/bench/metrics.lua (100 points per record) for METRICS_SECONDS.
# BENCH_PG_LOG=1 logs every PostgreSQL statement with its duration (copied to /tmp/bench-pg.log),
# BENCH_PG_EXPLAIN=MS also the plans (EXPLAIN ANALYZE) of statements slower than MS ms,
# and BENCH_LOG_LEVEL=debug the projector's per-chunk timings (/tmp/bench-server.log).
set -euo pipefail
cd "$(dirname "$0")/.."
batch_seconds=${1:-10}
metrics_seconds=${2:-0}
tools/build.sh >/dev/null

port=18743
source tools/bench/lib.sh
if [[ -n "${BENCH_PG_EXPLAIN:-}" ]]; then  # plans of statements over BENCH_PG_EXPLAIN ms
  psql "$db_url" -v ON_ERROR_STOP=1 -qc "LOAD 'auto_explain'" \
    -c "ALTER SYSTEM SET session_preload_libraries = 'auto_explain'" \
    -c "ALTER SYSTEM SET auto_explain.log_min_duration = '${BENCH_PG_EXPLAIN}ms'" \
    -c "ALTER SYSTEM SET auto_explain.log_analyze = on" \
    -c "ALTER SYSTEM SET auto_explain.log_nested_statements = on" -c "SELECT pg_reload_conf()" >/dev/null
  BENCH_PG_LOG=${BENCH_PG_LOG:-1}
fi
if [[ -n "${BENCH_PG_LOG:-}" ]]; then
  psql "$db_url" -qc "ALTER SYSTEM SET log_min_duration_statement = 0" \
    -c "ALTER SYSTEM SET log_parameter_max_length = 0" -c "SELECT pg_reload_conf()" >/dev/null
fi
start_server() {  # start_server DATABASE_URL
  DATABASE_URL=$1 API_BEARER_TOKEN=$XTRACE_BENCH_TOKEN BIND_ADDR=127.0.0.1:$port \
    XTRACE_WAL_DIR=$work/wal XTRACE_WAL_MAX_BYTES=$((64 << 30)) \
    XTRACE_PROJECTOR_CHUNK_BYTES=${BENCH_CHUNK_BYTES:-8388608} \
    XTRACE_LOG_LEVEL=${BENCH_LOG_LEVEL:-warn} build/bin/xtrace-server 2>>"$work/server.log" &
  server_pid=$!
  wait_healthy "$port"
}
count() { psql "$db_url" -tAc "SELECT count(*) FROM $1"; }

start_server "postgresql://postgres@127.0.0.1:1/none"
wrk -t2 -c64 -d"${batch_seconds}s" -s tools/bench/batch.lua "http://127.0.0.1:$port/v1/l/batch" >/dev/null
batch_records=$(status | json_field lastSequence)  # the trace records come first in the WAL
if ((metrics_seconds > 0)); then
  wrk -t2 -c64 -d"${metrics_seconds}s" -s tools/bench/metrics.lua \
    "http://127.0.0.1:$port/v1/metrics/batch" >/dev/null
fi
records=$(status | json_field lastSequence)
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true

cpu_ticks $(pg_pids) >"$work/pg-cpu-before"
start=$(date +%s.%N)
start_server "$db_url"
traces_done= metrics_done=
while :; do  # one status request per half second: polling must not compete with the projector
  st=$(status)
  traces_seq=$(json_field traces <<<"$st") metrics_seq=$(json_field metrics <<<"$st")
  # The streams run side by side; each part is done when its stream has passed its last record.
  [[ -z "$traces_done" && "${traces_seq:-0}" -ge "$batch_records" ]] && traces_done=$(date +%s.%N)
  [[ -z "$metrics_done" && "${metrics_seq:-0}" -ge "$records" ]] && metrics_done=$(date +%s.%N)
  [[ -n "$traces_done" && -n "$metrics_done" ]] && break
  sleep 0.5
done
drain=$(echo "$(date +%s.%N) - $start" | bc)
: >"$work/none"
server_cpu=$(cpu_seconds_since "$work/none" "$server_pid")
server_peak_mb=$(awk '/VmHWM/ {printf "%d", $2 / 1024}' "/proc/$server_pid/status")
pg_cpu=$(cpu_seconds_since "$work/pg-cpu-before" $(pg_pids))
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=

traces=$(count traces); observations=$(count observations); points=$(count metric_points)
rows=$((traces + observations + points))

# The same rows, exported and loaded again with plain COPY into the same (emptied) tables.
obs_columns=$(psql "$db_url" -tAc "SELECT string_agg(quote_ident(column_name), ',' ORDER BY ordinal_position)
  FROM information_schema.columns WHERE table_name = 'observations' AND is_generated = 'NEVER'")
psql "$db_url" -q -c "\\copy traces TO '$work/traces.copy'" \
  -c "\\copy (SELECT $obs_columns FROM observations) TO '$work/observations.copy'" \
  -c "\\copy metric_points TO '$work/points.copy'"
psql "$db_url" -qc "TRUNCATE traces, observations, metric_points"
copy_start=$(date +%s.%N)
psql "$db_url" -q -c "\\copy traces FROM '$work/traces.copy'" \
  -c "\\copy observations ($obs_columns) FROM '$work/observations.copy'"
copy_points_start=$(date +%s.%N)
psql "$db_url" -q -c "\\copy metric_points FROM '$work/points.copy'"
copy_end=$(date +%s.%N)
copy=$(echo "$copy_end - $copy_start" | bc)

echo "| WAL records | traces | observations | metric points | projector drain s | projector rows/s | raw COPY s | raw COPY rows/s | projector / COPY |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '| %d | %d | %d | %d | %.1f | %.0f | %.1f | %.0f | %.2f |\n' "$records" "$traces" "$observations" \
  "$points" "$drain" "$(echo "$rows / $drain" | bc -l)" "$copy" "$(echo "$rows / $copy" | bc -l)" \
  "$(echo "$copy / $drain" | bc -l)"
# Per part: the time until its stream passed the last of its records (to the half second of
# polling). The two parts overlap, so they add up to more than the drain.
batch_s=$(echo "$traces_done - $start" | bc)
metrics_s=$(echo "$metrics_done - $start" | bc)
copy_batch=$(echo "$copy_points_start - $copy_start" | bc)
copy_points=$(echo "$copy_end - $copy_points_start" | bc)
part() {  # part NAME ROWS PROJECTOR_S COPY_S
  printf '| %s | %d | %.1f | %.0f | %.1f | %.0f | %.2f |\n' "$1" "$2" "$3" "$(echo "$2 / $3" | bc -l)" \
    "$4" "$(echo "$2 / $4" | bc -l)" "$(echo "$4 / $3" | bc -l)"
}
echo
echo "| part | rows | projector s | projector rows/s | raw COPY s | raw COPY rows/s | projector / COPY |"
echo "|---|---|---|---|---|---|---|"
part "traces + observations" "$((traces + observations))" "$batch_s" "$copy_batch"
((points > 0)) && part "metric points" "$points" "$metrics_s" "$copy_points"
echo
echo "CPU during the drain: server ${server_cpu} s, PostgreSQL ${pg_cpu} s, wall $(printf '%.1f' "$drain") s (2 cores); server peak RSS ${server_peak_mb} MB"
