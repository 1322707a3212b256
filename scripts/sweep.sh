#!/usr/bin/env bash
# Removes what dead test runs left behind: processes started from the shared test scratch
# root, network namespaces, nftables tables, cgroups and mounts named with a test prefix.
# Objects carry per-test prefixes but share one root, so while another test run is alive
# (an ava process exists) this leaves everything alone: only dead runs are swept.
set -uo pipefail
ROOT="${TMPDIR:-/tmp}/ingot-test"

if pgrep -f 'node_modules/(\.bin/ava|ava/)' >/dev/null 2>&1; then
  echo "sweep: another test run is alive; leaving its files and processes alone" >&2
  exit 0
fi

# Processes whose command line points into the scratch root (nats-servers, components, …).
pkill -KILL -f -- "$ROOT/" 2>/dev/null || true

# Test kernel objects carry the prefix "it" + 4 hex digits (test/helpers/tmp.ts runPrefix).
pattern='^it[0-9a-f]{4}'
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "$pattern" || true); do
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
  ip netns delete "$ns" 2>/dev/null || true
done
for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "$pattern" || true); do
  ip link delete "$link" 2>/dev/null || true
done
if command -v nft >/dev/null; then
  nft list tables 2>/dev/null | awk '{print $2, $3}' | grep -E "ingot_it[0-9a-f]{4}" | while read -r family table; do
    nft delete table "$family" "$table" 2>/dev/null || true
  done
fi
grep -E " [^ ]*/ingot-test/[^ ]* " /proc/mounts 2>/dev/null | awk '{print $2}' | sort -r | while read -r m; do
  umount -l "$m" 2>/dev/null || true
done
for ctl in memory pids cpu,cpuacct cpu; do
  base="/sys/fs/cgroup/$ctl/ingot-test"
  [[ -d "$base" ]] && find "$base" -depth -type d -exec rmdir {} \; 2>/dev/null
done
rm -rf "$ROOT" 2>/dev/null || true
exit 0
