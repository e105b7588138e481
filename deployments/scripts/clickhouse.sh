#!/usr/bin/env bash
# Installs (if missing) and runs a project-local ClickHouse server.
#   clickhouse.sh start   install if needed, start on $CH_DIR, wait until it answers
#   clickhouse.sh stop    stop the server started from $CH_DIR
#   clickhouse.sh status  exit 0 when the server answers on $CH_TCP_PORT
# The Debian package's service scripts do not run here, so the server is
# started by hand with a copy of the packaged config pointed at $CH_DIR.
set -euo pipefail

CH_DIR=${CH_DIR:-$PWD/data/clickhouse}
CH_TCP_PORT=${CH_TCP_PORT:-9000}
CH_HTTP_PORT=${CH_HTTP_PORT:-8123}
CH_INTERSERVER_PORT=${CH_INTERSERVER_PORT:-9009}

log() { echo "clickhouse.sh: $*" >&2; }

answers() {
  clickhouse-client --port "$CH_TCP_PORT" -q 'SELECT 1' >/dev/null 2>&1
}

install() {
  if command -v clickhouse-server >/dev/null 2>&1 && command -v clickhouse-client >/dev/null 2>&1; then
    return
  fi
  log "installing clickhouse-server from Debian packages (about a minute)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq clickhouse-server clickhouse-client >/dev/null
}

configure() {
  mkdir -p "$CH_DIR"/{conf,log,tmp,user_files,format_schemas}
  CH_DIR=$(cd "$CH_DIR" && pwd)
  sed -e "s#/var/lib/clickhouse/#$CH_DIR/#g" \
      -e "s#/var/log/clickhouse-server/#$CH_DIR/log/#g" \
      -e "s#<tcp_port>9000</tcp_port>#<tcp_port>$CH_TCP_PORT</tcp_port>#" \
      -e "s#<http_port>8123</http_port>#<http_port>$CH_HTTP_PORT</http_port>#" \
      -e "s#<interserver_http_port>9009</interserver_http_port>#<interserver_http_port>$CH_INTERSERVER_PORT</interserver_http_port>#" \
      -e "s#<level>trace</level>#<level>warning</level>#" \
      -e "s#<listen_host>::1</listen_host>##" \
      /etc/clickhouse-server/config.xml >"$CH_DIR/conf/config.xml"
  cp /etc/clickhouse-server/users.xml "$CH_DIR/conf/users.xml"
  # Extra users (e.g. the output of deployments/clickhouse/iocd-user.sh).
  if [ -n "${CH_USERS_D:-}" ]; then
    mkdir -p "$CH_DIR/conf/users.d"
    cp "$CH_USERS_D"/*.xml "$CH_DIR/conf/users.d/"
  fi
  # Extra server settings (e.g. TLS: tcp_port_secure and openSSL).
  if [ -n "${CH_CONFIG_D:-}" ]; then
    mkdir -p "$CH_DIR/conf/config.d"
    cp "$CH_CONFIG_D"/*.xml "$CH_DIR/conf/config.d/"
  fi
  # A module boundary: `go test ./...` must not walk the server's data
  # files, which appear and vanish as ClickHouse merges parts.
  printf 'module clickhouse.data.ignored\n' >"$CH_DIR/go.mod"
}

start() {
  install
  if answers; then
    log "already answering on port $CH_TCP_PORT"
    return
  fi
  configure
  log "starting on port $CH_TCP_PORT with data in $CH_DIR"
  # 18.16 writes --pid-file only when it daemonises, so keep the pid ourselves.
  (cd "$CH_DIR" || exit 1
   # setsid: Ctrl-C on a terminal running `make run` must not reach the
   # server while iocd is still draining into it.
   setsid nohup clickhouse-server --config-file="$CH_DIR/conf/config.xml" >"$CH_DIR/log/stdout.log" 2>&1 &
   echo $! >"$CH_DIR/server.pid")
  for _ in $(seq 1 120); do
    if answers; then
      log "ready"
      return
    fi
    sleep 0.5
  done
  log "did not answer within 60 s; last log lines:"
  tail -n 20 "$CH_DIR/log/clickhouse-server.err.log" "$CH_DIR/log/stdout.log" >&2 || true
  exit 1
}

stop() {
  local pid
  CH_DIR=$(cd "$CH_DIR" 2>/dev/null && pwd || echo "$CH_DIR")
  pid=$(pgrep -f "^clickhouse-server --config-file=$CH_DIR/conf/config.xml" | head -n 1 || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 60); do
      kill -0 "$pid" 2>/dev/null || { log "stopped"; rm -f "$CH_DIR/server.pid"; return; }
      sleep 0.5
    done
    log "still running after 30 s"
    exit 1
  fi
  log "not running"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) answers ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
