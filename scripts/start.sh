#!/usr/bin/env bash
# `npm start` (DESIGN.md §7): installs what is missing, then brings Ingot up: a local director with SQLite and its own
# mbus, the local IaaS (namespace VMs on the bridge ingot0, 10.244.0.0/24), and
# manifests/local.yml deployed onto it, with the local balancer on 127.0.0.1:8080 in front of
# the routers. Everything goes through the `ingot` CLI, as an operator would type it. Run
# again, it is a quick no-op: uploads and the deploy find nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh start
# The kernel as plain processes (npm run start:processes) would hold 127.0.0.1:8080.
bash scripts/stop-processes.sh --quiet

ROOT=$(pwd)
RUN="$ROOT/.ingot-run/platform"
GATEWAY=10.244.0.1
DIRECTOR_URL="http://$GATEWAY:25555"
mkdir -p "$RUN"
ingot() { node "$ROOT/bin/ingot.js" "$@"; }

# Secrets are made once per installation and kept across restarts.
secret() { [[ -f "$RUN/$1" ]] || head -c "${2:-18}" /dev/urandom | base64 | tr -d '/+=\n' >"$RUN/$1"; cat "$RUN/$1"; }
DIRECTOR_PASSWORD=$(secret director.password)
TOKEN_SECRET=$(secret director.token 48)
ADMIN_PASSWORD=$(secret admin.password)

cat >"$RUN/cpi.yml" <<YAML
prefix: ingot
bridge: ingot0
subnet: 10.244.0.0/24
data_dir: $RUN/cpi
# The agent runs from this checkout, in the repository (where tsx resolves).
agent_command: "cd '$ROOT' && exec '$(command -v node)' --import tsx orchestrator/agent/main.ts --settings /var/vcap/bosh/settings.json"
registry_proxy: { port: 8099 }
YAML
cat >"$RUN/director.yml" <<YAML
name: ingot-local
data_dir: $RUN/director
listen: { host: $GATEWAY, port: 25555 }
admin: { user: admin, password: "$DIRECTOR_PASSWORD" }
token: { secret: "$TOKEN_SECRET" }
mbus: { host: $GATEWAY, port: 4222 }
blobstore: { url: "$DIRECTOR_URL" }
cpi: local
cpi_config: $RUN/cpi.yml
YAML

# Alive: the recorded pid runs that command (not a zombie, not a reused pid).
alive() {
  local pid; pid=$(cat "$RUN/$1.pid" 2>/dev/null) || return 1
  [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" =~ ^[RSD]$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$1"
}
daemon() { # name, then argv: started detached, output in $RUN/<name>.log, pid in $RUN/<name>.pid
  local name=$1; shift
  nohup "$@" >>"$RUN/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
}

if ! alive director; then
  daemon director node "$ROOT/bin/ingot.js" director-server --config "$RUN/director.yml"
fi
for _ in $(seq 150); do
  curl -fsS -o /dev/null "$DIRECTOR_URL/info" 2>/dev/null && break
  alive director || { echo "npm start: the director exited; see $RUN/director.log:" >&2; tail -5 "$RUN/director.log" >&2; exit 1; }
  sleep 0.2
done

export INGOT_HOME="${INGOT_HOME:-$HOME/.ingot}"
ingot director "$DIRECTOR_URL" >/dev/null
ingot director login -u admin -p "$DIRECTOR_PASSWORD" >/dev/null

STEMCELL="$RUN/ingot-local-bookworm.tgz"
[[ -f "$STEMCELL" ]] || node --import tsx stemcells/local/build.ts --out "$STEMCELL" --jobs kernel/jobs --install
ingot upload-stemcell "$STEMCELL"
RELEASE=$(ingot create-release --dir "$RUN/releases" --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).tarball))')
ingot upload-release "$RELEASE"
ingot update-cloud-config -n manifests/cloud-config-local.yml
ingot deploy -n manifests/local.yml -v "cc_admin_password=$ADMIN_PASSWORD"

# The balancer in front of the routers (their static IPs in manifests/local.yml).
cat >"$RUN/balancer.yml" <<YAML
listen: { host: 127.0.0.1, port: 8080 }
backends:
  - { host: 10.244.0.15, port: 8080, health: { port: 8081 } }
  - { host: 10.244.0.16, port: 8080, health: { port: 8081 } }
YAML
if alive balancer; then kill -HUP "$(cat "$RUN/balancer.pid")"; else daemon balancer node "$ROOT/bin/ingot.js" balancer --config "$RUN/balancer.yml"; fi

for _ in $(seq 300); do
  curl -fsS -o /dev/null -H 'Host: api.localhost' http://127.0.0.1:8080/v3/info 2>/dev/null && break
  sleep 0.2
done
ingot api http://api.localhost:8080 >/dev/null
ingot login -u admin -p "$ADMIN_PASSWORD" >/dev/null

echo "Ingot is up (director $DIRECTOR_URL, deployment ingot on local VMs; state in $RUN/):"
echo "  API      http://api.localhost:8080    (admin password in $RUN/admin.password)"
echo "  apps     http://<app>.localhost:8080"
echo "Push an app:"
echo "  npx ingot push hello -p examples/node-hello"
echo "Stop with: npm stop"
