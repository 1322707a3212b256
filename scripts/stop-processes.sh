#!/usr/bin/env bash
# `npm run stop:processes`: stops what `npm run start:processes` started; keeps .ingot-run/
# (its state and passwords).
set -uo pipefail
cd "$(dirname "$0")/.."
RUN=.ingot-run
for pidfile in "$RUN"/*.pid; do
  [[ -e "$pidfile" ]] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
done
[[ "${1:-}" == --quiet ]] || echo "Ingot stopped."
