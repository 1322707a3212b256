// The container host: what one DEA owns on its machine — the uid, host-port and address pools,
// the cgroup parent, the nftables table and the containers directory. Creates containers,
// finds them again after a DEA restart (from their state files), and removes all of it on
// shutdown.

import { chown, chmod, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openCgroups, type CgroupDriver } from './cgroups.ts';
import { Container, type ContainerHostContext, type ContainerPaths } from './container.ts';
import { ContainerError, ContainerStateError, IsolationUnavailableError, wrapError } from './errors.ts';
import { IndexPool } from './index-pool.ts';
import { slotAddresses, slotCount } from './ipv4.ts';
import { systemTool } from './command.ts';
import { checkIsolationSupport, isolationRefusal } from './isolation-support.ts';
import { DEFAULT_TOOLS, hostsFile, type Tools } from './launcher.ts';
import { cgroupPath, hostCgroupPath, hostnameFor, nftTableName } from './names.ts';
import {
  applyRuleset,
  createContainerNet,
  deleteTable,
  describeContainerNet,
  enableIpForwarding,
  removeContainerNet,
} from './network.ts';
import type { PortMapping, RulesetInput } from './nft-ruleset.ts';
import { compileContainerSpec, compileHostOptions } from './options.ts';
import { readState, STATE_FILE, writeState, type ContainerState } from './state.ts';
import type { CompiledHostOptions, ContainerSpec, HostOptions } from './types.ts';

export class ContainerHost {
  readonly options: CompiledHostOptions;
  readonly #cgroups: CgroupDriver | null;
  readonly #tools: Tools;
  readonly #containers = new Map<string, Container>();
  readonly #creating = new Set<string>();
  readonly #uids: IndexPool;
  readonly #ports: IndexPool;
  readonly #slots: IndexPool;
  #rulesApplied: Promise<void> = Promise.resolve();
  #shutDown = false;

  private constructor(options: CompiledHostOptions, cgroups: CgroupDriver | null, tools: Tools) {
    this.options = options;
    this.#cgroups = cgroups;
    this.#tools = tools;
    this.#uids = new IndexPool('container uids', options.uidRange.count);
    this.#ports = new IndexPool('host ports', options.network.hostPorts.count);
    this.#slots = new IndexPool(`container address slots in ${options.network.subnetText}`, slotCount(options.network.subnet));
  }

  /** Validates options, checks the machine can isolate (namespaces), recovers the containers
   *  a previous run of this DEA left in dataDir, and installs the DEA's nftables table. */
  static async create(raw: HostOptions): Promise<ContainerHost> {
    const options = compileHostOptions(raw);
    const namespaced = options.isolation === 'namespaces';
    if (namespaced) {
      const support = await checkIsolationSupport({ cgroupRoot: options.cgroupRoot });
      if (!support.ok) throw new IsolationUnavailableError(isolationRefusal(support.missing), support.missing);
    }
    const tools = resolveTools();
    const cgroups = namespaced
      ? await openCgroups(options.cgroupRoot).catch((err) => {
          throw wrapError('Opening cgroups', err);
        })
      : null;
    const host = new ContainerHost(options, cgroups, tools);
    try {
      // Traversable but not listable: with isolation none an app reaches its own home by path.
      await mkdir(host.#containersDir, { recursive: true, mode: 0o711 });
      await chmod(host.#containersDir, 0o711);
      if (namespaced) await enableIpForwarding();
      await host.#recover();
      if (namespaced) await host.#applyRules();
    } catch (err) {
      throw wrapError(`Starting container host ${options.prefix}`, err);
    }
    return host;
  }

  get prefix(): string {
    return this.options.prefix;
  }

  get nftTable(): string {
    return nftTableName(this.options.prefix);
  }

  /** Cgroup path (relative to each controller root) holding this host's containers. */
  get cgroupPath(): string {
    return hostCgroupPath(this.options.cgroupParent, this.options.prefix);
  }

  get cgroupDriver(): CgroupDriver | null {
    return this.#cgroups;
  }

  containers(): Container[] {
    return [...this.#containers.values()];
  }

  get(id: string): Container | undefined {
    return this.#containers.get(id);
  }

  async createContainer(raw: ContainerSpec): Promise<Container> {
    if (this.#shutDown) throw new ContainerStateError(`Container host ${this.prefix} is shut down`);
    const spec = compileContainerSpec(raw);
    if (this.#containers.has(spec.id) || this.#creating.has(spec.id)) throw new ContainerStateError(`Container ${spec.id} already exists on ${this.prefix}`);
    const o = this.options;
    const namespaced = o.isolation === 'namespaces';
    const uidIndex = this.#uids.allocate();
    let portIndex: number | null = null;
    let slot: number | null = null;
    const paths = this.#paths(spec.id, spec.appDir);
    const release = () => {
      this.#uids.release(uidIndex);
      if (portIndex !== null) this.#ports.release(portIndex);
      if (slot !== null) this.#slots.release(slot);
    };
    // Reserve the id at once so a concurrent create of the same id fails instead of racing.
    this.#creating.add(spec.id);
    try {
      portIndex = this.#ports.allocate();
      if (namespaced) slot = this.#slots.allocate();
      const hostPort = o.network.hostPorts.start + portIndex;
      const addresses = slot === null ? null : slotAddresses(o.network.subnet, slot);
      const uid = o.uidRange.start + uidIndex;
      const hostname = spec.hostname ?? hostnameFor(spec.id);
      const state: ContainerState = {
        version: 1,
        id: spec.id,
        isolation: o.isolation,
        uid,
        uidIndex,
        portIndex,
        slot,
        hostPort,
        containerPort: namespaced ? o.network.containerPort : hostPort,
        containerAddress: addresses?.container ?? null,
        hostname,
        appDir: paths.app,
        appDirOwned: false,
        binds: spec.binds,
        limits: { memoryBytes: spec.memoryBytes, pids: spec.pids, cpuShares: spec.cpuShares, diskBytes: spec.diskBytes },
        process: null,
        createdAt: new Date().toISOString(),
      };
      try {
        await this.#makeDirs(paths, uid, spec.appDir === undefined);
        await writeFile(paths.hostsFile, hostsFile(hostname, addresses?.container ?? null), { mode: 0o644 });
        await writeState(join(paths.dir, STATE_FILE), state);
        const cgPath = cgroupPath(o.cgroupParent, o.prefix, spec.id);
        if (namespaced) await this.#cgroups!.create(cgPath, state.limits);
        const net = addresses ? await createContainerNet(o.prefix, spec.id, addresses, { mapLoopback: o.network.mapLoopback }) : null;
        const container = new Container({ host: this.#context, state, paths, cgroupPath: cgPath, net, env: spec.env });
        this.#containers.set(spec.id, container);
        this.#creating.delete(spec.id);
        if (namespaced) await this.#applyRules();
        return container;
      } catch (err) {
        await this.#removeLeftovers(spec.id, paths.dir);
        throw err;
      }
    } catch (err) {
      this.#containers.delete(spec.id);
      this.#creating.delete(spec.id);
      release();
      throw wrapError(`Creating container ${spec.id}`, err);
    }
  }

  /** Destroys every container and removes the host's nftables table and cgroup parent. A DEA
   *  that only restarts does not call this: its containers keep running and are recovered. */
  async shutdown(): Promise<void> {
    this.#shutDown = true;
    const failures: string[] = [];
    const results = await Promise.allSettled(this.containers().map((c) => c.destroy()));
    for (const r of results) if (r.status === 'rejected') failures.push(String((r.reason as Error)?.message ?? r.reason));
    if (this.options.isolation === 'namespaces') {
      await this.#rulesApplied.catch(() => undefined);
      await deleteTable(this.nftTable).catch((e: Error) => failures.push(e.message));
      await this.#cgroups!.removeIfEmpty(this.cgroupPath);
      // The shared parent goes too once no other host uses it.
      if (this.options.cgroupParent) await this.#cgroups!.removeIfEmpty(this.options.cgroupParent);
    }
    if (failures.length > 0) throw new ContainerError('SETUP_FAILED', `Shutting down container host ${this.prefix}: ${failures.join('; ')}`);
  }

  get #containersDir(): string {
    return join(this.options.dataDir, 'containers');
  }

  #paths(id: string, appDir: string | undefined): ContainerPaths {
    const dir = join(this.#containersDir, id);
    return {
      dir,
      home: join(dir, 'home'),
      app: appDir ?? join(dir, 'home', 'app'),
      tmp: join(dir, 'tmp'),
      rootfs: join(dir, 'rootfs'),
      hostsFile: join(dir, 'hosts'),
    };
  }

  async #makeDirs(paths: ContainerPaths, uid: number, ownApp: boolean): Promise<void> {
    const root = process.geteuid?.() === 0;
    const namespaced = this.options.isolation === 'namespaces';
    // With isolation none the app lives in the host's tree: it may traverse to its own
    // directories, and nothing of one instance is readable by another's uid.
    await mkdir(paths.dir, { mode: namespaced ? 0o700 : 0o711 });
    await mkdir(paths.rootfs, { mode: 0o755 });
    await mkdir(paths.home, { mode: 0o700 });
    // The app dir's mount point inside /home/vcap, also when the app dir lives elsewhere.
    await mkdir(join(paths.home, 'app'), { mode: 0o755 });
    const tmpMode = namespaced ? 0o1777 : 0o700;
    await mkdir(paths.tmp, { mode: tmpMode });
    await chmod(paths.tmp, tmpMode);
    if (root) {
      await chown(paths.home, uid, uid);
      await chown(join(paths.home, 'app'), uid, uid);
      await chown(paths.tmp, uid, uid);
    }
    if (!ownApp) await mkdir(paths.app, { recursive: true });
  }

  /** Removes whatever a failed create made, by name, without needing a Container. */
  async #removeLeftovers(id: string, dir: string): Promise<void> {
    const o = this.options;
    if (this.#cgroups) await this.#cgroups.destroy(cgroupPath(o.cgroupParent, o.prefix, id)).catch(() => undefined);
    if (o.isolation === 'namespaces') await removeContainerNet(o.prefix, id).catch(() => undefined);
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }

  /** Re-adopts containers from state files; a container whose uid, port or slot no longer fits
   *  the options (or whose state is unreadable) is torn down. */
  async #recover(): Promise<void> {
    const o = this.options;
    for (const id of await readdir(this.#containersDir)) {
      const dir = join(this.#containersDir, id);
      let state: ContainerState;
      try {
        state = await readState(join(dir, STATE_FILE));
      } catch {
        await this.#removeLeftovers(id, dir);
        continue;
      }
      const fits =
        state.isolation === o.isolation &&
        this.#uids.claim(state.uidIndex) &&
        this.#ports.claim(state.portIndex) &&
        (state.slot === null || this.#slots.claim(state.slot));
      if (!fits) {
        await this.#removeLeftovers(id, dir);
        continue;
      }
      const paths = { ...this.#paths(id, undefined), app: state.appDir };
      const net = state.slot === null ? null : describeContainerNet(o.prefix, id, slotAddresses(o.network.subnet, state.slot));
      const container = new Container({
        host: this.#context,
        state,
        paths,
        cgroupPath: cgroupPath(o.cgroupParent, o.prefix, id),
        net,
        env: {},
      });
      await container.recover();
      this.#containers.set(id, container);
    }
  }

  get #context(): ContainerHostContext {
    return {
      prefix: this.options.prefix,
      isolation: this.options.isolation,
      tools: this.#tools,
      cgroups: this.#cgroups,
      release: async (container) => {
        if (this.#containers.get(container.id) === container) this.#containers.delete(container.id);
        const s = container.state;
        this.#uids.release(s.uidIndex);
        this.#ports.release(s.portIndex);
        if (s.slot !== null) this.#slots.release(s.slot);
        if (this.options.isolation === 'namespaces' && !this.#shutDown) await this.#applyRules();
      },
    };
  }

  #rulesetInput(): RulesetInput {
    const n = this.options.network;
    const mappings: PortMapping[] = [];
    for (const c of this.#containers.values()) {
      if (c.address) {
        mappings.push({ containerId: c.id, hostPort: c.hostPort, containerAddress: c.address, containerPort: c.containerPort });
      }
    }
    return {
      table: this.nftTable,
      subnet: n.subnetText,
      hostAddress: n.hostAddress,
      mapLoopback: n.mapLoopback,
      mappings,
      allow: n.allow,
      deny: n.deny,
    };
  }

  /** Serialised, and rendered when its turn comes, so the last applied table is the newest. */
  #applyRules(): Promise<void> {
    const next = this.#rulesApplied.catch(() => undefined).then(() => applyRuleset(this.#rulesetInput()));
    this.#rulesApplied = next;
    return next;
  }
}

function resolveTools(): Tools {
  const tools = { ...DEFAULT_TOOLS };
  for (const name of ['sh', 'nsenter', 'unshare', 'setpriv', 'prlimit'] as const) {
    tools[name] = systemTool(name) ?? DEFAULT_TOOLS[name];
  }
  return tools;
}
