#!/usr/bin/env bash
# `npm run start:processes`: the kernel as plain local processes under .ingot-run/ — a
# nats-server with credentials and every kernel component (scripts/local-kernel/*.yml) — for
# quick work on the kernel itself. `npm start` (scripts/start.sh) is the real thing: the
# director deploys manifests/local.yml onto namespace VMs. `npm run stop:processes` stops this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh start

RUN=.ingot-run
mkdir -p "$RUN"
bash scripts/stop.sh --quiet
bash scripts/stop-processes.sh --quiet

# Secrets are made once per installation and kept across restarts.
secret() { [[ -f "$RUN/$1" ]] || head -c "${2:-18}" /dev/urandom | base64 | tr -d '/+=\n' >"$RUN/$1"; cat "$RUN/$1"; }
NATS_PASSWORD=$(secret nats.password)
STATUS_PASSWORD=$(secret status.password)
JWT_SECRET=$(secret jwt.secret 48)
ADMIN_PASSWORD=$(secret admin.password)
BULK_PASSWORD=$(secret bulk.password)
RUN_ABS=$(cd "$RUN" && pwd)
mkdir -p "$RUN/cloud-controller" "$RUN/dea"
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
  sed -e "s|@NATS_PORT@|$NATS_PORT|g" -e "s|@NATS_PASSWORD@|$NATS_PASSWORD|g" -e "s|@STATUS_PASSWORD@|$STATUS_PASSWORD|g" \
    -e "s|@JWT_SECRET@|$JWT_SECRET|g" -e "s|@ADMIN_PASSWORD@|$ADMIN_PASSWORD|g" -e "s|@BULK_PASSWORD@|$BULK_PASSWORD|g" \
    -e "s|@RUN@|$RUN_ABS|g" "$template" >"$RUN/$name.yml"
  nohup node bin/ingot.js component "$name" --config "$RUN/$name.yml" >"$RUN/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
  started+=("$name")
done

# Ready when the API answers through the router (every component found the others over NATS).
for _ in $(seq 300); do
  curl -fsS -o /dev/null -H 'Host: api.localhost' http://127.0.0.1:8080/v3/info 2>/dev/null && break
  for name in "${started[@]}"; do
    kill -0 "$(cat "$RUN/$name.pid")" 2>/dev/null || { echo "npm start: $name exited; see $RUN/$name.log:" >&2; tail -5 "$RUN/$name.log" >&2; exit 1; }
  done
  sleep 0.2
done

echo "Ingot is up (kernel as local processes; logs in $RUN/):"
echo "  API      http://api.localhost:8080    (admin password in $RUN/admin.password)"
echo "  apps     http://<app>.localhost:8080"
echo "  running  ${started[*]} and nats-server on 127.0.0.1:$NATS_PORT"
echo "Log in and push:"
echo "  npx ingot api http://api.localhost:8080"
echo "  npx ingot login -u admin -p \"\$(cat $RUN/admin.password)\""
echo "  npx ingot push hello -p examples/static-site"
echo "Stop with: npm run stop:processes"

