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

# Test kernel objects carry the prefix "itst" (test/helpers/tmp.ts runPrefix).
cd "$(dirname "$0")/.."
[[ -d node_modules/tsx ]] && node --import tsx scripts/sweep-kernel.ts itst || true
rm -rf "$ROOT" 2>/dev/null || true
exit 0
