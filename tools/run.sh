#!/usr/bin/env bash
# The main job: install dependencies, build, and run xtrace-server in the foreground.
#
# With DATABASE_URL unset, a private PostgreSQL is created under ./data/pg (kept between runs)
# and used. With API_BEARER_TOKEN unset, a random token is generated once and kept in
# ./data/token. Any other setting (docs/operations.md) can be given in the environment.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/setup.sh
tools/build.sh

mkdir -p data
if [[ -z "${DATABASE_URL:-}" ]]; then
  DATABASE_URL=$(tools/pg-local.sh start "$PWD/data/pg" auto)
  export DATABASE_URL
  echo "run: private PostgreSQL under ./data/pg: $DATABASE_URL (stop: tools/pg-local.sh stop data/pg)"
fi
if [[ -z "${API_BEARER_TOKEN:-}" ]]; then
  if [[ ! -s data/token ]]; then
    head -c 24 /dev/urandom | base64 | tr -d '/+=' >data/token
    chmod 600 data/token
  fi
  API_BEARER_TOKEN=$(cat data/token)
  export API_BEARER_TOKEN
fi
export XTRACE_WAL_DIR=${XTRACE_WAL_DIR:-$PWD/data/wal}
bind=${BIND_ADDR:-127.0.0.1:8742}

cat <<MSG
run: xtrace-server on http://$bind
run: bearer token: $API_BEARER_TOKEN
run: try
  curl -s http://$bind/healthz
  curl -s -X POST http://$bind/v1/l/batch -H "Authorization: Bearer $API_BEARER_TOKEN" \\
    -H 'Content-Type: application/json' \\
    -d '{"trace":{"id":"7d0c8a9e-1111-4222-8333-444455556666","name":"chat","userId":"alice"}}'
  curl -s "http://$bind/api/public/traces?userId=alice" -H "Authorization: Bearer $API_BEARER_TOKEN"
MSG
exec build/bin/xtrace-server
