#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL + PostGIS server on loopback for the tests.
#
#   scripts/pg_test_server.sh start   # installs Debian's postgresql-15-postgis-3 if missing,
#                                     # prints the URL to export as THREELINES_TEST_PG
#   scripts/pg_test_server.sh stop
#
# The cluster lives in a temporary folder (trust authentication, loopback only, port 54330
# unless PGPORT_TEST is set) and is removed by `stop`.
set -euo pipefail
port="${PGPORT_TEST:-54330}"
state="${TMPDIR:-/tmp}/threelines-pg-test-$port"
bin=/usr/lib/postgresql/15/bin
if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); sudo=(); else as_pg=(); sudo=(sudo); fi

case "${1:-}" in
start)
  if [ ! -f /usr/share/postgresql/15/extension/postgis.control ]; then
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get install -y -q postgresql-15-postgis-3 >/dev/null \
      || { "${sudo[@]}" apt-get update -q >/dev/null && "${sudo[@]}" apt-get install -y -q postgresql-15-postgis-3 >/dev/null; }
  fi
  rm -rf "$state"
  mkdir -p "$state"
  [ "$(id -u)" = 0 ] && chown postgres "$state"
  "${as_pg[@]}" "$bin/initdb" -D "$state/db" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >/dev/null
  "${as_pg[@]}" "$bin/pg_ctl" -D "$state/db" -l "$state/log" -w \
    -o "-h 127.0.0.1 -p $port -k $state -c fsync=off -c full_page_writes=off" start >/dev/null
  psql -h 127.0.0.1 -p "$port" -U postgres -q -c "CREATE DATABASE threelines" >/dev/null
  psql -h 127.0.0.1 -p "$port" -U postgres -d threelines -q -c "CREATE EXTENSION postgis" >/dev/null
  echo "postgresql://postgres@127.0.0.1:$port/threelines"
  ;;
stop)
  if [ -d "$state/db" ]; then
    "${as_pg[@]}" "$bin/pg_ctl" -D "$state/db" -m fast stop >/dev/null || true
  fi
  rm -rf "$state"
  ;;
*)
  echo "usage: $0 start|stop" >&2
  exit 2
  ;;
esac
