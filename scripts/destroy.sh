#!/usr/bin/env bash
# `npm run destroy`: everything `npm start` made goes — processes (npm stop), the local VMs'
# and the DEAs' kernel objects (network namespaces, veths, the bridge, nftables tables,
# cgroups, the 10.244.0.0/16 route) and the state in .ingot-run/platform (the director's
# database, disks, passwords). The next `npm start` begins from nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/stop.sh --quiet
bash scripts/stop-processes.sh --quiet
node --import tsx scripts/sweep-kernel.ts ingot 10.244.0.0/16
node --import tsx scripts/sweep-kernel.ts dea
# The route that kept VM traffic on this machine (kept by the CPI while VMs may exist).
ip route del unreachable 10.244.0.0/16 2>/dev/null
rm -rf .ingot-run/platform
echo "Ingot destroyed: no process, namespace, mount or cgroup of it is left."
