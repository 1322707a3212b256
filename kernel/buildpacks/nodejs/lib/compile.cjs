// bin/compile of the nodejs buildpack. Installs production dependencies — `npm ci` when the
// app has a lock file (reproducible), else `npm install` — through the registry the DEA names
// in npm_config_registry (its proxy in npm_config_proxy); the npm cache lives in the
// buildpack cache so a restage reuses it. Then writes .profile.d/nodejs.sh.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const [buildDir, cacheDir] = process.argv.slice(2);
if (!buildDir || !cacheDir) fail('usage: compile BUILD_DIR CACHE_DIR');

function step(line) {
  process.stdout.write(`-----> ${line}\n`);
}
function info(line) {
  process.stdout.write(`       ${line}\n`);
}
function fail(line) {
  process.stderr.write(` !     ${line}\n`);
  process.exit(1);
}

let pkg;
try {
  pkg = JSON.parse(fs.readFileSync(path.join(buildDir, 'package.json'), 'utf8'));
} catch (err) {
  fail(`package.json cannot be read: ${err.message}`);
}
if (pkg === null || typeof pkg !== 'object' || Array.isArray(pkg)) fail('package.json is not a JSON object');

step(`Using node ${process.version} (${process.execPath})`);
const wanted = pkg.engines && pkg.engines.node;
if (wanted) info(`package.json asks for node ${wanted}; this stack offers ${process.version} only`);

const deps = Object.keys(pkg.dependencies || {}).length + Object.keys(pkg.optionalDependencies || {}).length;
const lockFile = ['npm-shrinkwrap.json', 'package-lock.json'].find((f) => fs.existsSync(path.join(buildDir, f)));
if (deps === 0) {
  step('No dependencies to install');
} else {
  const env = { ...process.env };
  env.npm_config_cache ||= path.join(cacheDir, 'npm');
  const args = lockFile ? ['ci'] : ['install'];
  args.push('--omit=dev', '--no-audit', '--no-fund', '--foreground-scripts');
  const registry = env.npm_config_registry || 'the default registry';
  step(`Installing ${deps} ${deps === 1 ? 'dependency' : 'dependencies'} with npm ${args[0]}${lockFile ? ` (from ${lockFile})` : ''} from ${registry}`);
  const npm = spawnSync('npm', args, { cwd: buildDir, env, stdio: 'inherit' });
  if (npm.error) fail(`npm could not run: ${npm.error.message}`);
  if (npm.status !== 0) fail(`npm ${args[0]} failed (exit status ${npm.status ?? npm.signal})`);
}

// The runtime's directory goes first on PATH: the app runs on the node it was staged with.
const nodeDir = path.dirname(process.execPath);
const fallbackMemory = process.env.MEMORY_LIMIT || '512m';
const profile = `# Written by Ingot's nodejs buildpack. The node the app was staged with, the app's own
# bin scripts, and a V8 heap sized to the instance's memory (75 % of MEMORY_LIMIT, read now,
# so a rescaled app fits without restaging), so a small app is not killed by node's defaults.
export PATH="${nodeDir}:$HOME/node_modules/.bin:$PATH"
export NODE_ENV="\${NODE_ENV:-production}"
__ingot_mem="\${MEMORY_LIMIT:-${fallbackMemory}}"
__ingot_mb=
if [[ "$__ingot_mem" =~ ^([0-9]+)([kKmMgG]?)$ ]]; then
  case "\${BASH_REMATCH[2]}" in
    [gG]) __ingot_mb=$(( 10#\${BASH_REMATCH[1]} * 1024 )) ;;
    [mM]) __ingot_mb=$(( 10#\${BASH_REMATCH[1]} )) ;;
    [kK]) __ingot_mb=$(( 10#\${BASH_REMATCH[1]} / 1024 )) ;;
    *) __ingot_mb=$(( 10#\${BASH_REMATCH[1]} / 1048576 )) ;;
  esac
fi
if [[ -n "$__ingot_mb" ]] && (( __ingot_mb > 0 )); then
  case " \${NODE_OPTIONS:-} " in
    *--max-old-space-size*) ;;
    *) export NODE_OPTIONS="\${NODE_OPTIONS:+$NODE_OPTIONS }--max-old-space-size=$(( __ingot_mb * 75 / 100 ))" ;;
  esac
fi
unset __ingot_mem __ingot_mb
`;
const profileDir = path.join(buildDir, '.profile.d');
fs.mkdirSync(profileDir, { recursive: true });
fs.writeFileSync(path.join(profileDir, 'nodejs.sh'), profile);
step('Wrote .profile.d/nodejs.sh');
