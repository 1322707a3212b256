#!/usr/bin/env bash
# `npm test`: installs what is missing, sweeps what dead runs left behind, then runs the unit,
# integration and e2e suites with ava's TAP output and prints `N passed, N failed` — counted
# from the TAP lines, since ava 7's own summary leaves the pass count out. A test file that
# crashes shows as a failed line. Exits non-zero when anything failed.
#   npm test                 all three suites
#   npm test -- unit         one suite (unit | integration | e2e)
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh test || exit 1
bash scripts/sweep.sh

suites=("${@:-unit integration e2e}")
suites=(${suites[*]})
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
for suite in "${suites[@]}"; do
  [[ "$suite" =~ ^(unit|integration|e2e)$ ]] || { echo "test.sh: no suite '$suite' (unit, integration, e2e)" >&2; exit 2; }
  files=$(find "test/$suite" -name '*.test.ts' 2>/dev/null | sort)
  [[ -n "$files" ]] || { echo "# $suite: no tests"; continue; }
  echo "# suite: $suite"
  extra=()
  [[ "$suite" == e2e ]] && extra=(--serial)
  npx ava --tap "${extra[@]}" $files 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
  if ((rc != 0)) && ! grep -q '^not ok' "$log"; then
    echo "not ok - the $suite suite exited with $rc before reporting a failure" | tee -a "$log"
  fi
  ((rc == 0)) || status=1
done
bash scripts/sweep.sh
passed=$(grep -E '^ok ' "$log" | grep -vc '# SKIP')
failed=$(grep -cE '^not ok' "$log")
((failed == 0)) || status=1
echo "$passed passed, $failed failed"
exit $status
