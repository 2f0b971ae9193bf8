# Shared setup of the benchmark scripts (sourced, not run): a scratch directory with a private
# PostgreSQL, removed on exit together with the server the script started.
work=$(mktemp -d /tmp/xtrace-bench-XXXXXX)
chmod 755 "$work"  # the PostgreSQL cluster inside runs as another user when we are root
pg_dir=$work/pg
cleanup() {
  [[ -n "${server_pid:-}" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  tools/pg-local.sh stop "$pg_dir" >/dev/null 2>&1 || true
  [[ -n "${BENCH_PG_LOG:-}" ]] && cp "$pg_dir/server.log" /tmp/bench-pg.log &&
    cp "$work/server.log" /tmp/bench-server.log
  rm -rf "$work"
}
trap cleanup EXIT
db_url=$(tools/pg-local.sh start "$pg_dir" auto | tail -n 1)
export XTRACE_BENCH_TOKEN=bench-token

wait_healthy() {  # wait_healthy PORT: until the server answers /healthz (at most 5 s)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && return; sleep 0.05; done
}
status() {
  curl -s -H "Authorization: Bearer $XTRACE_BENCH_TOKEN" "http://127.0.0.1:$port/api/internal/status"
}
json_field() {  # json_field KEY: the first numeric value of "KEY": in stdin
  grep -o "\"$1\":[0-9.]*" | head -n 1 | cut -d: -f2
}

# CPU accounting, to tell where a run's time went: cpu_ticks PID... prints "pid ticks" (user +
# system clock ticks) per live process; pg_pids lists the PostgreSQL cluster's processes.
cpu_ticks() {
  local pid
  for pid in "$@"; do
    [[ -r /proc/$pid/stat ]] && awk -v p="$pid" '{print p, $14 + $15}' "/proc/$pid/stat"
  done
  true
}
pg_pids() { pgrep -P "$(head -n 1 "$pg_dir/data/postmaster.pid")"; head -n 1 "$pg_dir/data/postmaster.pid"; }
cpu_seconds_since() {  # cpu_seconds_since SNAPSHOT_FILE PID...: CPU seconds used since the snapshot
  cpu_ticks "${@:2}" | awk -v hz="$(getconf CLK_TCK)" 'FILENAME != "-" {before[$1] = $2; next}
    {used += $2 - before[$1]} END {printf "%.1f", used / hz}' "$1" -
}
