#!/usr/bin/env bash
# `npm stop`: stops the balancer and the director, then every process of
# the local VMs and of the DEAs' containers — as a reboot would — keeping all state (the
# director's database, the persistent disks, the passwords). The next start brings the same
# deployment and apps back: the director finds the VMs gone and creates them again.
set -uo pipefail
cd "$(dirname "$0")/.."
RUN=.ingot-run/platform

running() { [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" =~ ^[RSD]$ ]]; } # a zombie has ended
stop_pid() { # pidfile: SIGTERM, a bounded wait, then SIGKILL
  [[ -f "$1" ]] || return 0
  local pid; pid=$(cat "$1")
  if running "$pid"; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 100); do running "$pid" || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}
stop_pid "$RUN/balancer.pid"
stop_pid "$RUN/director.pid"

# Every process in the VMs' cgroups (ingot/ingot/vm-*) and the DEAs' containers (ingot/dea<N>/…).
for _ in 1 2 3; do
  pids=$(find /sys/fs/cgroup/pids/ingot/ingot /sys/fs/cgroup/pids/ingot/dea[0-9]* -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)
  [[ -n "$pids" ]] || break
  kill -KILL $pids 2>/dev/null
  sleep 0.2
done
# Each VM's keeper (it holds the VM's namespaces; a VM whose keeper is gone is gone).
for ns in $(ip netns list 2>/dev/null | awk '/^ingot-vm-/ {print $1}'); do
  kill -KILL $(ip netns pids "$ns" 2>/dev/null) 2>/dev/null
done
# The director's mbus (nats-server) and the registry proxy outlive the director by design.
pkill -KILL -f "$RUN/director/" 2>/dev/null
pkill -KILL -f "registry-proxy-main.* --prefix ingot\$" 2>/dev/null
[[ "${1:-}" == --quiet ]] || echo "Ingot stopped (state kept in $RUN/)."
