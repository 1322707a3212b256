// The registry proxy on the bridge's gateway: a VM reaches the configured registry through it,
// and nothing else (plain HTTP or CONNECT).
import test from 'ava';
import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { cpiResult, execInVm, localCpiFixture, manualNetwork, sweepCpi, vmLeftovers, vmPids, type CpiFixture } from '../helpers/cpi-local.ts';
import { freePort } from '../helpers/ports.ts';

// Run inside a VM: one request through the proxy at argv[1]:argv[2]; prints status and body.
const CLIENT = `
const http = require('node:http');
const [host, port, method, target] = process.argv.slice(1);
const req = http.request({ host, port: Number(port), method, path: target });
req.on('connect', (res) => { console.log(res.statusCode); process.exit(0); });
req.on('response', (res) => { let b = ''; res.on('data', (d) => (b += d)); res.on('end', () => console.log(res.statusCode + ' ' + b.trim())); });
req.on('error', (e) => console.log('ERR ' + e.code));
req.setTimeout(5000, () => { console.log('TIMEOUT'); process.exit(0); });
req.end();
`;

let fx: CpiFixture;
let registry: Server;
let registryPort: number;
let proxyPort: number;
let vm: string | null = null;

test.before(async () => {
  registry = createServer((req, res) => res.end(`packument of ${req.url}`));
  registryPort = await freePort();
  await new Promise<void>((resolve) => registry.listen(registryPort, '127.0.0.1', resolve));
  proxyPort = await freePort();
  fx = await localCpiFixture({ registry_proxy: { port: proxyPort, registry: `http://127.0.0.1:${registryPort}/` } });
  const stemcell = await cpiResult<string>(fx.configFile, 'create_stemcell', ['/var/tmp/stemcell.tgz', {}]);
  vm = await cpiResult<string>(fx.configFile, 'create_vm', ['agent-p', stemcell, {}, manualNetwork(fx, 40), [], {}]);
});

test.after.always(async () => {
  registry?.close();
  if (!fx) return;
  if (vm) await cpiResult(fx.configFile, 'delete_vm', [vm]).catch(() => undefined);
  await sweepCpi(fx);
  await rm(fx.dir, { recursive: true, force: true });
});

async function through(method: string, target: string): Promise<string> {
  return (await execInVm(fx.prefix, vm!, [process.execPath, '-e', CLIENT, fx.gateway, String(proxyPort), method, target])).stdout.trim();
}

test.serial('a VM reaches the registry through the proxy', async (t) => {
  t.is(await through('GET', `http://127.0.0.1:${registryPort}/left-pad`), '200 packument of /left-pad');
});

test.serial('anything else is refused', async (t) => {
  t.regex(await through('GET', 'http://198.51.100.1/'), /^403 only http:\/\/127\.0\.0\.1/);
  t.regex(await through('GET', `http://127.0.0.1:${registryPort + 1}/`), /^403 /);
  t.is(await through('CONNECT', '198.51.100.1:443'), '403');
  t.is(await through('CONNECT', `127.0.0.1:22`), '403');
});

test.serial('deleting the VM and sweeping leaves nothing', async (t) => {
  const seen = await vmPids(fx.prefix, vm!);
  await cpiResult(fx.configFile, 'delete_vm', [vm!]);
  vm = null;
  t.deepEqual(await vmLeftovers(fx.prefix, seen), []);
  await sweepCpi(fx);
  const { readdir, readFile } = await import('node:fs/promises');
  const proxies: string[] = [];
  for (const pid of (await readdir('/proc')).filter((n) => /^\d+$/.test(n))) {
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes('registry-proxy-main') && cmd.includes(fx.prefix)) proxies.push(pid);
  }
  t.deepEqual(proxies, []);
});
