#!/usr/bin/env bash
# A private PostgreSQL cluster for local runs and tests, listening on loopback only.
#
#   tools/pg-local.sh start DIR PORT   create (first time) and start the cluster in DIR; prints
#                                      its URL, database "xtrace", user "postgres", trust auth;
#                                      PORT "auto" picks a free port (retrying on a clash)
#   tools/pg-local.sh stop DIR         stop it (fast shutdown)
#   tools/pg-local.sh url DIR          print the URL of a cluster started earlier
#
# PostgreSQL refuses to run as root, so under root the cluster belongs to the `postgres` user
# (created by the Debian package).
set -euo pipefail

cmd=${1:?usage: pg-local.sh start|stop|url DIR [PORT]}
dir=$(realpath -m "${2:?missing DIR}")
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
  start)
    port=${3:?missing PORT}
    auto=false
    [[ "$port" == auto ]] && auto=true
    mkdir -p "$dir"
    if [[ $(id -u) -eq 0 ]]; then
      chown postgres:postgres "$dir"
      if ! runuser -u postgres -- test -w "$dir"; then
        echo "pg-local: user postgres cannot reach $dir (a parent directory is not searchable)" >&2
        exit 1
      fi
    fi
    chmod 700 "$dir"
    if [[ ! -f "$dir/data/PG_VERSION" ]]; then
      as_owner "$pg_bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 \
        --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    if as_owner "$pg_bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      port=$(cat "$dir/port")  # already running: keep the port it was started on
    else
      # With "auto", several clusters may start at once (parallel tests): a random free-looking
      # port can still be taken by a sibling before it binds, so a failed start tries another.
      for attempt in 1 2 3 4 5 6; do
        if $auto; then
          port=$((20000 + RANDOM % 40000))
          (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
        fi
        if as_owner "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
          -o "-p $port -c listen_addresses=127.0.0.1 -k $dir -c max_connections=200" >/dev/null; then
          break
        fi
        if ! $auto || [[ $attempt == 6 ]]; then tail -n 20 "$dir/server.log" >&2; exit 1; fi
      done
    fi
    echo "$port" >"$dir/port"
    as_owner "$pg_bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -tAq \
      -c "SELECT 1 FROM pg_database WHERE datname = 'xtrace'" | grep -q 1 \
      || as_owner "$pg_bin/createdb" -h "$dir" -p "$port" -U postgres xtrace
    echo "postgresql://postgres@127.0.0.1:$port/xtrace"
    ;;
  stop)
    if [[ -f "$dir/data/PG_VERSION" ]]; then
      as_owner "$pg_bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    ;;
  url)
    echo "postgresql://postgres@127.0.0.1:$(cat "$dir/port")/xtrace"
    ;;
  *)
    echo "usage: pg-local.sh start|stop|url DIR [PORT]" >&2
    exit 2
    ;;
esac
