#!/usr/bin/env bash
# `npm start`: installs what is missing, then brings Ingot up on this machine.
#
# Until the orchestrator lands (issues 7 and 8), this runs the kernel as plain local
# processes under .ingot-run/: a nats-server with credentials and every kernel component
# that exists so far (scripts/local-kernel/*.yml). `npm stop` stops them. With the
# orchestrator, this becomes: a local director deploys manifests/local.yml onto namespace VMs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh start

RUN=.ingot-run
mkdir -p "$RUN"
bash scripts/stop.sh --quiet

# One password per installation, kept across restarts.
[[ -f "$RUN/nats.password" ]] || head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$RUN/nats.password"
NATS_PASSWORD=$(cat "$RUN/nats.password")
NATS_PORT=${INGOT_NATS_PORT:-4222}
cat >"$RUN/nats.conf" <<CONF
listen: 127.0.0.1:$NATS_PORT
authorization { user: "kernel", password: "$NATS_PASSWORD" }
CONF
nohup /usr/sbin/nats-server -c "$RUN/nats.conf" >"$RUN/nats.log" 2>&1 &
echo $! >"$RUN/nats.pid"

started=()
for template in scripts/local-kernel/*.yml; do
  [[ -e "$template" ]] || continue
  name=$(basename "$template" .yml)
  sed -e "s/@NATS_PORT@/$NATS_PORT/g" -e "s/@NATS_PASSWORD@/$NATS_PASSWORD/g" "$template" >"$RUN/$name.yml"
  nohup node bin/ingot.js component "$name" --config "$RUN/$name.yml" >"$RUN/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
  started+=("$name")
done

echo "Ingot kernel (local processes) is up:"
echo "  NATS              nats://kernel:<.ingot-run/nats.password>@127.0.0.1:$NATS_PORT"
for name in "${started[@]}"; do echo "  $name  logs: $RUN/$name.log"; done
[[ ${#started[@]} -gt 0 ]] || echo "  (no kernel component exists yet besides the bus)"
echo "Stop with: npm stop"
