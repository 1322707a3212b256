#!/usr/bin/env bash
# Installs whatever Ingot needs that this machine lacks: Debian packages (as root, through
# apt-get) and the npm dependencies (npm ci, when node_modules is missing or older than the
# lock file). Idempotent and quiet when everything is present. Usage: ensure-deps.sh [GROUP…]
# where GROUP is one of: test, start, bench (default: test).
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A PACKAGES=(
  # nats-server: the kernel bus and the mbus; nftables + iproute2 + util-linux: namespace VMs
  # and containers; procps: ps/pkill for sweeps; postgresql: the controller's database in the
  # tests that run it on PostgreSQL (a private cluster each, started as the postgres user);
  # redis-server, mariadb-server, rabbitmq-server: the service nodes' servers (their own
  # processes, ports and data; the system services these packages may start are not used).
  [test]="nats-server nftables iproute2 util-linux procps postgresql redis-server mariadb-server rabbitmq-server"
  [start]="nats-server nftables iproute2 util-linux procps curl"
  [bench]="nats-server wrk nginx-light"
)

groups=("${@:-test}")
wanted=()
for g in "${groups[@]}"; do
  [[ -n "${PACKAGES[$g]:-}" ]] || { echo "ensure-deps: unknown group '$g' (test, start, bench)" >&2; exit 2; }
  for p in ${PACKAGES[$g]}; do wanted+=("$p"); done
done

missing=()
for p in $(printf '%s\n' "${wanted[@]}" | sort -u); do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
  echo "ensure-deps: installing Debian packages: ${missing[*]}"
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "ensure-deps: installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi
