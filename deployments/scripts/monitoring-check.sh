#!/usr/bin/env bash
# Checks the monitoring files with the tools of Debian's prometheus and
# prometheus-alertmanager packages (installed if missing; with the argument
# "install", only that): the Prometheus
# configuration and rules, the rules' unit tests, the Alertmanager
# configuration and where its routes send an IOC's alerts.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v promtool >/dev/null 2>&1 || ! command -v amtool >/dev/null 2>&1; then
  echo "monitoring-check.sh: installing prometheus and prometheus-alertmanager from Debian packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq prometheus prometheus-alertmanager >/dev/null
fi
# "install": only make sure the tools are there (the integration tests and
# benchmarks run prometheus and alertmanager as processes).
[ "${1:-}" = install ] && exit 0
promtool check config deployments/prometheus/prometheus.yml
promtool check rules deployments/prometheus/rules/iocstream.yml
promtool test rules deployments/prometheus/tests/iocstream_test.yml
amtool check-config deployments/alertmanager/alertmanager.yml

# Each line: the receiver expected, then the alert's labels.
routes() {
  cat <<'ROUTES'
duty-officer alertname=river_level_kim_long severity=critical area=kim-long source=wl-kim-long
duty-officer alertname=camera_fire_smoke severity=critical area=phu-xuan source=cam-dong-ba-1
duty-officer alertname=aqi_hazardous severity=critical area=phu-bai
units alertname=aqi_bad severity=warning area=phu-bai
digest alertname=silent_camera severity=info area=vy-da
platform alertname=IocdDown severity=critical instance=127.0.0.1:8080
ROUTES
}
routes | while read -r want labels; do
  # shellcheck disable=SC2086
  got=$(amtool config routes test --config.file=deployments/alertmanager/alertmanager.yml $labels 2>/dev/null)
  if [ "$got" != "$want" ]; then
    echo "monitoring-check.sh: $labels goes to $got, want $want" >&2
    exit 1
  fi
  echo "route: $labels -> $got"
done
