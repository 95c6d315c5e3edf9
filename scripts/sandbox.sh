#!/usr/bin/env bash
# scripts/sandbox.sh -- a throwaway primary + streaming standby for the demo,
# the tests and the benchmarks.
#
#   sandbox.sh start DIR        initdb a primary (pg_mig preloaded) and a standby
#                               (pg_basebackup -R, slot standby1), start both, wait
#                               until the standby streams, write DIR/env
#   sandbox.sh stop DIR [--remove]
#   sandbox.sh failover DIR     the primary dies (immediate stop), the standby is
#                               promoted and becomes the primary; a new standby
#                               is made from it (pg_basebackup, slot standby1)
#                               in the old primary's place; DIR/env is rewritten
#   sandbox.sh ctl DIR primary|standby <pg_ctl args>   e.g. "restart -m fast"
#   sandbox.sh env DIR
#   sandbox.sh psql DIR [primary|standby] [psql args]
#
# PostgreSQL refuses to run as root: as root the servers run as the OS user
# "pgmig" (created if needed). Ports are free ones; servers are stopped with
# pg_ctl -D, never by process name. SANDBOX_CONF adds postgresql.conf lines;
# SANDBOX_PRELOAD overrides shared_preload_libraries (default pg_mig). The
# primary is a copy of a cluster the server's initdb made once, in
# /tmp/pgmig-initdb.KEY (PGMIG_SANDBOX_TEMPLATE=0: initdb every time).
#
# The server: PGMIG_PG=15|17|18|19, PG_CONFIG or PG_BINDIR, else the pg_config
# on PATH (scripts/pgenv.sh). start records it in DIR/env; the other commands
# use the recorded one. 17 and 19 run in their chroots (scripts/pgchroot.sh);
# psql here is the host's, whatever the server's version.
set -euo pipefail
# shellcheck source=pgenv.sh
. "$(dirname "$0")/pgenv.sh"
USER_NAME=pgmig

die() { echo "sandbox.sh: $*" >&2; exit 1; }

# as_user PROG ARGS: a program of the server's bin directory, as the sandbox user
as_user() { local prog=$1; shift; pg_exec_as "$USER_NAME" "$BIN/$prog" "$@"; }

# use_recorded DIR: the server the sandbox in DIR was started with
use_recorded() {
  load_env "$1"
  PG_CONFIG=$SANDBOX_PG_CONFIG PG_BINDIR=$SANDBOX_PG_BINDIR PG_CHROOT=$SANDBOX_PG_CHROOT
  BIN=$PG_BINDIR
}

free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 20000 ))
    if ! (echo > /dev/tcp/127.0.0.1/$p) 2>/dev/null && [ ! -e "/tmp/.s.PGSQL.$p" ]; then
      echo "$p"; return 0
    fi
  done
  die "no free port found"
}

ensure_user() {
  [ "$(id -u)" -eq 0 ] || return 0
  id "$USER_NAME" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$USER_NAME" 2>/dev/null || id "$USER_NAME" >/dev/null
}

load_env() { [ -f "$1/env" ] || die "no sandbox in $1"; # shellcheck disable=SC1091
  . "$1/env"; }

ctl() {
  local dir=$1 which=$2; shift 2
  use_recorded "$dir"
  local data log
  # a server's log is its data directory's name + .log (the roles swap at a failover)
  if [ "$which" = primary ]; then data=$PRIMARY_DATA
  elif [ "$which" = standby ]; then data=$STANDBY_DATA
  else die "ctl: say primary or standby"; fi
  log=$data.log
  as_user pg_ctl -D "$data" -l "$log" -w -t 120 "$@" >/dev/null
}

wait_streaming() {
  local dir=$1
  load_env "$dir"
  for _ in $(seq 1 600); do
    n=$(psql -XAtq -h "$dir" -p "$PRIMARY_PORT" -U postgres -d postgres \
         -c "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'" 2>/dev/null || echo 0)
    [ "$n" = "1" ] && return 0
    sleep 0.1
  done
  echo "sandbox.sh: the standby did not start streaming; see $dir/standby.log" >&2
  return 1
}

# init_primary DATA: what initdb makes, as a copy of a cluster this server's
# initdb made once (a test binary, regress and each Django stack start a
# sandbox of their own: about 90 in --pg all, and initdb costs a few seconds
# of CPU where a copy costs a tenth). The template is kept in
# /tmp/pgmig-initdb.KEY, KEY naming the server's programs and their
# version; PGMIG_SANDBOX_TEMPLATE=0 runs initdb every time
init_primary() {
  local data=$1 args=(-U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync)
  if [ "${PGMIG_SANDBOX_TEMPLATE:-1}" = 0 ]; then
    as_user initdb -D "$data" "${args[@]}" >/dev/null
    return
  fi
  local key template new
  key=$(printf '%s\n' "$PG_BINDIR" "$PG_CHROOT" "${args[*]}" "$(ls -l --time-style=+%s "$PG_BINDIR/postgres" 2>/dev/null)" |
        md5sum | cut -c1-16)
  template=/tmp/pgmig-initdb.$key
  if [ ! -f "$template/PG_VERSION" ]; then
    # made aside and moved into place: a sandbox that starts meanwhile sees
    # none or all of it (two may both make one; the first move wins)
    new=$(mktemp -d "/tmp/pgmig-initdb-new.XXXXXX")
    chmod 755 "$new"
    [ "$(id -u)" -eq 0 ] && chown "$USER_NAME" "$new"
    as_user initdb -D "$new/data" "${args[@]}" >/dev/null
    mv -T "$new/data" "$template" 2>/dev/null || true
    rm -rf "$new"
  fi
  cp -a "$template" "$data"
}

start() {
  local dir=$1
  pg_resolve || die "no server to start"
  BIN=$PG_BINDIR
  ensure_user
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ -e "$dir/primary" ] && die "$dir already holds a sandbox"
  [ "$(id -u)" -eq 0 ] && chown "$USER_NAME" "$dir"
  chmod 755 "$dir"
  local pport sport
  pport=$(free_port); sport=$(free_port)
  while [ "$sport" = "$pport" ]; do sport=$(free_port); done
  trap 'echo "sandbox.sh: start failed; logs in '"$dir"'" >&2; stop "'"$dir"'" || true' ERR
  init_primary "$dir/primary"
  cat >> "$dir/primary/postgresql.conf" <<CONF
port = $pport
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_preload_libraries = '${SANDBOX_PRELOAD-pg_mig}'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
max_worker_processes = 24
hot_standby = on
wal_keep_size = '256MB'
log_line_prefix = '%m [%p] %b '
${SANDBOX_CONF:-}
CONF
  cat > "$dir/env" <<ENV
export PGHOST=$dir
export PGPORT=$pport
export PGUSER=postgres
export PGDATABASE=postgres
export SANDBOX_DIR=$dir
export SANDBOX_USER=$USER_NAME
export PRIMARY_PORT=$pport
export STANDBY_PORT=$sport
export PRIMARY_DATA=$dir/primary
export STANDBY_DATA=$dir/standby
export SANDBOX_PG_MAJOR=$PG_MAJOR
export SANDBOX_PG_CONFIG=$PG_CONFIG
export SANDBOX_PG_BINDIR=$PG_BINDIR
export SANDBOX_PG_CHROOT=$PG_CHROOT
ENV
  as_user pg_ctl -D "$dir/primary" -l "$dir/primary.log" -w -t 120 start >/dev/null
  local running
  running=$(psql -XAtq -h "$dir" -p "$pport" -U postgres -d postgres -c "SHOW server_version_num")
  if [ "$(( running / 10000 ))" != "$PG_MAJOR" ]; then
    stop "$dir"
    die "the primary runs PostgreSQL $running, not $PG_MAJOR from $PG_CONFIG"
  fi
  make_standby "$dir" "$pport" "$dir/standby" "$sport"
  as_user pg_ctl -D "$dir/standby" -l "$dir/standby.log" -w -t 120 start >/dev/null
  wait_streaming "$dir"
  trap - ERR
  echo "sandbox: PostgreSQL $PG_MAJOR, primary on port $pport, standby on port $sport, sockets in $dir"
  echo "  psql -h $dir -p $pport -U postgres      # primary"
  echo "  psql -h $dir -p $sport -U postgres      # standby"
  echo "  . $dir/env                              # PGHOST/PGPORT/... for the primary"
}

# make_standby DIR FROM_PORT DATA PORT: a streaming standby of the server on
# FROM_PORT, in DATA, on PORT, with slot standby1 (created if missing); the
# base backup asks for an immediate checkpoint (a spread one takes minutes
# on a promoted primary with writes behind it)
make_standby() {
  local dir=$1 from=$2 data=$3 port=$4
  psql -XAtq -h "$dir" -p "$from" -U postgres -d postgres \
       -c "SELECT pg_create_physical_replication_slot('standby1') WHERE NOT EXISTS
             (SELECT FROM pg_replication_slots WHERE slot_name = 'standby1')" >/dev/null
  as_user pg_basebackup -h "$dir" -p "$from" -U postgres -D "$data" -R -S standby1 -X stream -c fast --no-sync >/dev/null
  sed -i "s/^port = .*/port = $port/" "$data/postgresql.conf"
  # name the standby in pg_stat_replication
  sed -i "s/^primary_conninfo = '/primary_conninfo = 'application_name=standby1 /" "$data/postgresql.auto.conf"
}

# failover DIR: promote the standby after the primary's crash; a new standby
# in the old primary's directory and port
failover() {
  local dir=$1
  use_recorded "$dir"
  local old_data=$PRIMARY_DATA old_port=$PRIMARY_PORT new_data=$STANDBY_DATA new_port=$STANDBY_PORT
  as_user pg_ctl -D "$old_data" -m immediate -w -t 120 stop >/dev/null 2>&1 || true
  as_user pg_ctl -D "$new_data" -w -t 120 promote >/dev/null
  for _ in $(seq 1 600); do
    [ "$(psql -XAtq -h "$dir" -p "$new_port" -U postgres -d postgres -c "SELECT pg_is_in_recovery()" 2>/dev/null)" = f ] && break
    sleep 0.1
  done
  rm -rf "$old_data"
  make_standby "$dir" "$new_port" "$old_data" "$old_port"
  cat "$old_data.log" >> "$old_data.log.before-failover" 2>/dev/null || true
  rm -f "$old_data.log"
  as_user pg_ctl -D "$old_data" -l "$old_data.log" -w -t 120 start >/dev/null
  sed -i -e "s|^export PGPORT=.*|export PGPORT=$new_port|" \
         -e "s|^export PRIMARY_PORT=.*|export PRIMARY_PORT=$new_port|" \
         -e "s|^export STANDBY_PORT=.*|export STANDBY_PORT=$old_port|" \
         -e "s|^export PRIMARY_DATA=.*|export PRIMARY_DATA=$new_data|" \
         -e "s|^export STANDBY_DATA=.*|export STANDBY_DATA=$old_data|" "$dir/env"
  wait_streaming "$dir"
  echo "sandbox: failed over; primary on port $new_port ($new_data), standby on port $old_port ($old_data)"
}

stop() {
  local dir=$1
  [ -f "$dir/env" ] || return 0
  use_recorded "$dir"
  for d in standby primary; do
    if [ -f "$dir/$d/postmaster.pid" ]; then
      as_user pg_ctl -D "$dir/$d" -m fast -w -t 120 stop >/dev/null 2>&1 || true
    fi
  done
}

cmd=${1:-}; shift || true
case "$cmd" in
  start) [ $# -ge 1 ] || die "usage: sandbox.sh start DIR"; start "$1" ;;
  stop)  [ $# -ge 1 ] || die "usage: sandbox.sh stop DIR [--remove]"; stop "$1"
         if [ "${2:-}" = "--remove" ]; then rm -rf "$1"; fi ;;
  failover) [ $# -ge 1 ] || die "usage: sandbox.sh failover DIR"; failover "$1" ;;
  ctl)   [ $# -ge 3 ] || die "usage: sandbox.sh ctl DIR primary|standby ARGS"; d=$1; w=$2; shift 2; ctl "$d" "$w" "$@" ;;
  env)   cat "$1/env" ;;
  psql)  d=$1; shift; w=primary; if [ "${1:-}" = primary ] || [ "${1:-}" = standby ]; then w=$1; shift; fi
         load_env "$d"; p=$PRIMARY_PORT; [ "$w" = standby ] && p=$STANDBY_PORT
         exec psql -h "$d" -p "$p" -U postgres "$@" ;;
  *) die "usage: sandbox.sh start|stop|failover|ctl|env|psql DIR ..." ;;
esac
