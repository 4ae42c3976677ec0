#!/usr/bin/env bash
# System packages the tests drive for real: Debian's chromium (browser tests, through
# Playwright; never `playwright install`), nginx (the scale-out test's load balancer) and
# promtool from Debian's prometheus package (the alert rules' unit tests in deploy/prometheus)
# and etcd from Debian's etcd-server package (the Patroni failover drill's consensus store).
# Installed with apt-get when missing and we may (root); otherwise the tests that need
# them skip with a clear reason (and fail in CI, where LATTICE_REQUIRE_BROWSER=1,
# LATTICE_REQUIRE_NGINX=1, LATTICE_REQUIRE_PROMTOOL=1 and LATTICE_REQUIRE_PATRONI=1).
set -uo pipefail
chromium=${LATTICE_CHROMIUM:-/usr/bin/chromium}
missing=()
[ -x "$chromium" ] || missing+=(chromium)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v etcd >/dev/null 2>&1 || [ -x /usr/bin/etcd ] || missing+=(etcd-server)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing ${missing[*]} for the browser, scale-out, alert-rule and failover tests (apt-get install -y ${missing[*]})"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "${missing[@]}" >/dev/null; }
  # a package install must not leave a system nginx running (the tests start their own)
  if [[ " ${missing[*]} " == *" nginx "* ]] && command -v systemctl >/dev/null; then
    systemctl disable --now nginx >/dev/null 2>&1 || true
  fi
  # nor a Prometheus server (only its promtool is wanted); without systemd the package's
  # init script may have started one
  if [[ " ${missing[*]} " == *" prometheus "* ]]; then
    if command -v systemctl >/dev/null; then
      systemctl disable --now prometheus prometheus-node-exporter >/dev/null 2>&1 || true
    fi
    for svc in prometheus prometheus-node-exporter; do
      [ -x "/etc/init.d/$svc" ] && "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
      command -v update-rc.d >/dev/null && update-rc.d "$svc" disable >/dev/null 2>&1 || true
    done
  fi
  # nor a system etcd on the default ports 2379/2380 (the drill starts its own on free ports)
  if [[ " ${missing[*]} " == *" etcd-server "* ]]; then
    if command -v systemctl >/dev/null; then
      systemctl disable --now etcd >/dev/null 2>&1 || true
    fi
    [ -x /etc/init.d/etcd ] && /etc/init.d/etcd stop >/dev/null 2>&1 || true
    command -v update-rc.d >/dev/null && update-rc.d etcd disable >/dev/null 2>&1 || true
  fi
fi
[ -x "$chromium" ] || echo "note: $chromium not found; browser tests will be skipped (install Debian's chromium)"
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] \
  || echo "note: nginx not found; the scale-out test will be skipped (install nginx)"
command -v promtool >/dev/null 2>&1 \
  || echo "note: promtool not found; the alert-rule tests will be skipped (install Debian's prometheus)"
command -v etcd >/dev/null 2>&1 || [ -x /usr/bin/etcd ] \
  || echo "note: etcd not found; the Patroni failover drill will be skipped (install Debian's etcd-server)"
exit 0
