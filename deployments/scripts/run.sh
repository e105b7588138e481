#!/usr/bin/env bash
# `make run`: iocd with its embedded JetStream server, fed by the Huế
# simulator, until Ctrl-C. A local ClickHouse is installed and started when
# IOC_CLICKHOUSE_ADDR does not answer, and stopped again at the end.
# Knobs: SCENARIO (normal|flood|pollution|congestion), RATE (messages/s),
# SPEEDUP, BAD_RATIO, DUP_RATIO, LATE_RATIO, and every IOC_* variable.
set -euo pipefail

export IOC_DATA_DIR=${IOC_DATA_DIR:-$PWD/data}
export IOC_HTTP_ADDR=${IOC_HTTP_ADDR:-127.0.0.1:8080}
export IOC_NATS_LISTEN=${IOC_NATS_LISTEN:-127.0.0.1:4222}
mkdir -p "$IOC_DATA_DIR"
log=$IOC_DATA_DIR/iocd.log
http=${IOC_HTTP_ADDR/#:/127.0.0.1:}

started_clickhouse=
ch_port=${IOC_CLICKHOUSE_ADDR:-127.0.0.1:9000}
ch_port=${ch_port##*:}
if ! CH_TCP_PORT=$ch_port deployments/scripts/clickhouse.sh status; then
  CH_TCP_PORT=$ch_port deployments/scripts/clickhouse.sh start
  started_clickhouse=1
fi

bin/iocd run >>"$log" 2>&1 &
iocd=$!
sim=
watcher=
stopped=
stop() {
  trap - INT TERM
  [ -n "$stopped" ] && return
  stopped=1
  echo
  [ -n "$sim" ] && kill -INT "$sim" 2>/dev/null && wait "$sim" 2>/dev/null || true
  [ -n "$watcher" ] && kill "$watcher" 2>/dev/null && wait "$watcher" 2>/dev/null || true
  echo "stopping iocd (it drains: writes and acknowledges what it holds)"
  kill -TERM "$iocd" 2>/dev/null || true
  wait "$iocd" 2>/dev/null || true
  if [ -n "$started_clickhouse" ]; then
    deployments/scripts/clickhouse.sh stop
  fi
  echo "stopped; data stays under $IOC_DATA_DIR"
}
trap stop INT TERM

echo "waiting for iocd to be ready (log: $log)"
for _ in $(seq 1 120); do
  if curl -fsS "http://$http/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$iocd" 2>/dev/null; then echo "iocd exited; last log lines:"; tail -n 20 "$log"; exit 1; fi
  sleep 0.5
done

db=${IOC_CLICKHOUSE_DATABASE:-ioc}
cat <<MSG

  iocd is running.
    console:  http://$http/               (the operators' board, map and silences; Vietnamese, English switch)
    metrics:  http://$http/metrics      health: http://$http/healthz  http://$http/readyz
    NATS:     nats://$IOC_NATS_LISTEN   (streams IOC_EVENTS, IOC_ALERTS, IOC_DLQ)
    log:      $log
  Ready-to-paste ClickHouse query (clickhouse-client):
    SELECT window_start, area, source, metric, count, round(sum / count, 2) AS avg, max, final
    FROM $db.window_agg FINAL
    WHERE window_size_s = 60 AND kind = 'environment' AND window_start > now() - 600
    ORDER BY window_start DESC, area, source, metric LIMIT 30
  Rejections: SELECT reason, count() FROM $db.rejected GROUP BY reason
  Alerts:   http://$http/api/v1/alerts   live: http://$http/api/v1/alerts/stream (SSE)
            bin/iocctl alerts [watch]    NATS subjects ioc.alerts.<severity>.<kind>.<area>
            act on one: bin/iocctl --by NAME alerts ack|unack|assign|comment|history FINGERPRINT ...
            silences:   bin/iocctl silences [add|expire]
  Alert transitions are printed below as they happen (rules: ${IOC_RULES:-the built-in Huế pack}).
  Ctrl-C stops everything cleanly.

MSG

# Alert transitions, live, on this terminal.
IOC_HTTP_ADDR=$http bin/iocctl alerts watch &
watcher=$!

bin/iocsim --nats "nats://$IOC_NATS_LISTEN" --scenario "${SCENARIO:-normal}" --rate "${RATE:-200}" \
  --speedup "${SPEEDUP:-1}" --bad-ratio "${BAD_RATIO:-0.01}" --dup-ratio "${DUP_RATIO:-0.01}" \
  --late-ratio "${LATE_RATIO:-0.01}" --progress "${PROGRESS:-30s}" &
sim=$!
wait "$sim" || true
sim=
stop
