#!/usr/bin/env bash
# Server memory while reading one large trace: ingests a trace with OBSERVATIONS observations in
# one batch (100000 make a 15 MB request), reads its detail READS times, and prints the
# server's resident set size (VmRSS from /proc/<pid>/status) idle (after the ingest is
# projected, before the reads), at its peak during the reads (sampled every 50 ms) and after.
#
#   tools/measure-read-memory.sh [OBSERVATIONS] [READS]        (defaults 100000 and 5)
#
# XTRACE_SERVER_BIN runs another build's server (to compare two builds); by default the script
# builds and runs build/bin/xtrace-server.
set -euo pipefail
cd "$(dirname "$0")/.."
observations=${1:-100000}
reads=${2:-5}
if [[ -z "${XTRACE_SERVER_BIN:-}" ]]; then
  tools/build.sh >/dev/null
  XTRACE_SERVER_BIN=build/bin/xtrace-server
fi

port=18745
source tools/bench/lib.sh
trace=7d0c8a9e-1111-4222-8333-444455556666

# One batch: the trace and its observations, one millisecond apart.
awk -v n="$observations" -v trace="$trace" 'BEGIN {
  printf "{\"trace\":{\"id\":\"%s\",\"name\":\"large\",\"timestamp\":\"2026-01-01T00:00:00Z\"},", trace
  printf "\"observations\":["
  for (i = 0; i < n; i++) {
    printf "%s{\"id\":\"00000000-0000-4000-8000-%012x\",\"traceId\":\"%s\",\"type\":\"SPAN\",", \
      (i ? "," : ""), i, trace
    printf "\"startTime\":\"2026-01-01T%02d:%02d:%02d.%03dZ\"}", \
      int(i / 3600000), int(i / 60000) % 60, int(i / 1000) % 60, i % 1000
  }
  printf "]}"
}' >"$work/batch.json"

DATABASE_URL=$db_url API_BEARER_TOKEN=$XTRACE_BENCH_TOKEN BIND_ADDR=127.0.0.1:$port \
  XTRACE_WAL_DIR=$work/wal RATE_LIMIT_QPS=1000000 RATE_LIMIT_BURST=1000000 XTRACE_LOG_LEVEL=warn \
  "$XTRACE_SERVER_BIN" 2>>"$work/server.log" &
server_pid=$!
wait_healthy "$port"

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$server_pid/status"; }
mib() { echo "$(($1 / 1024)) MiB"; }
auth=(-H "Authorization: Bearer $XTRACE_BENCH_TOKEN")
base="http://127.0.0.1:$port"

start=$(rss_kib)
curl -sf "${auth[@]}" -H 'Content-Type: application/json' --data-binary "@$work/batch.json" \
  "$base/v1/l/batch" >/dev/null
for _ in $(seq 1200); do  # until the projector has caught up (at most 60 s)
  s=$(status)
  [[ $(echo "$s" | json_field lagRecords) == 0 && $(echo "$s" | json_field projectedSequence) -ge 1 ]] && break
  sleep 0.05
done
idle=$(rss_kib)

# Sample the resident size while the reads run.
( while kill -0 "$server_pid" 2>/dev/null; do rss_kib; sleep 0.05; done ) >"$work/rss" 2>/dev/null &
sampler=$!
for i in $(seq "$reads"); do
  t0=$(date +%s.%N)
  bytes=$(curl -sf "${auth[@]}" "$base/api/public/traces/$trace" | wc -c)
  t1=$(date +%s.%N)
  printf 'read %d: %d bytes in %.2f s, VmRSS %s\n' "$i" "$bytes" "$(echo "$t1 - $t0" | bc)" \
    "$(mib "$(rss_kib)")"
done
after=$(rss_kib)
kill "$sampler"
peak=$(sort -n "$work/rss" | tail -n 1)
[[ $after -gt $peak ]] && peak=$after

echo "observations: $observations ($(wc -c <"$work/batch.json") bytes ingested), reads: $reads"
echo "VmRSS at start: $(mib "$start")"
echo "VmRSS idle:     $(mib "$idle")"
echo "VmRSS peak:     $(mib "$peak")"
echo "VmRSS after:    $(mib "$after")"
