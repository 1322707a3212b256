#!/usr/bin/env bash
# `npm run bench -- NAME`: runs bench/NAME/main.ts after installing what benchmarks need.
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:-}"
if [[ -z "$name" || ! -f "bench/$name/main.ts" ]]; then
  echo "usage: npm run bench -- NAME   (one of: $(ls bench 2>/dev/null | tr '\n' ' '))" >&2
  exit 2
fi
shift
bash scripts/ensure-deps.sh test bench
exec npx tsx "bench/$name/main.ts" "$@"
