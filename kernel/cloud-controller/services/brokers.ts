// The service brokers the controller knows: registered by an admin through the API (any OSB
// broker, by URL) or announced by a gateway on services.gateway.announce. Registering fetches
// and validates the catalog first, so a broker that does not answer or answers nonsense is
// refused with the reason; an announce registers or refreshes (the catalog again when the last
// fetch is older than `catalog_refresh_s`), and a failure there is logged, never fatal.
import type { Logger } from 'pino';
import type { ServiceGatewayAnnounce } from '../../bus/mod.ts';
import type { CcConfig } from '../config.ts';
import { DbError, type ServiceBrokerRecord, type Store } from '../db/mod.ts';
import { errors } from '../errors.ts';
import { newGuid, now } from '../ids.ts';
import { KeyedLock } from '../locks.ts';
import { BrokerClient, BrokerError } from './broker-client.ts';
import { parseCatalog, syncCatalog } from './catalog.ts';

export interface BrokerRegistration {
  name: string;
  url: string;
  username: string;
  password: string;
}

export class BrokerRegistry {
  private readonly lock = new KeyedLock();
  /** Announcing gateways without a credential, warned about once each. */
  private readonly warned = new Set<string>();

  constructor(private readonly d: { store: Store; config: CcConfig; log: Logger }) {}

  client(b: Pick<ServiceBrokerRecord, 'name' | 'url' | 'username' | 'password'>): BrokerClient {
    return new BrokerClient(b, this.d.config.service_brokers.request_timeout_s * 1000);
  }

  /** Registers a broker after fetching its catalog: 422 naming what is wrong, nothing kept. */
  async register(r: BrokerRegistration, source: 'api' | 'announce' = 'api', label: string | null = null): Promise<ServiceBrokerRecord> {
    return this.lock.run(r.name, async () => {
      if (await this.d.store.serviceBrokers.find({ name: r.name })) throw errors.uniqueness(`Name must be unique: a service broker named ${r.name} exists`);
      const catalog = await this.fetchCatalog(r);
      const at = now();
      const broker: ServiceBrokerRecord = { guid: newGuid(), ...r, source, label, catalog_fetched_at: at, catalog_error: null, created_at: at, updated_at: at };
      try {
        await this.d.store.serviceBrokers.insert(broker);
      } catch (err) {
        if (err instanceof DbError && err.code === 'unique_violation') throw errors.uniqueness(`Name must be unique: a service broker named ${r.name} exists`);
        throw err;
      }
      await syncCatalog(this.d.store, broker, catalog);
      this.d.log.info({ broker: broker.name, url: broker.url, source, offerings: catalog.services.length }, 'service broker registered');
      return broker;
    });
  }

  /** Changes a broker's name, URL or credential and fetches its catalog again (PATCH). */
  async update(broker: ServiceBrokerRecord, patch: Partial<BrokerRegistration>): Promise<ServiceBrokerRecord> {
    return this.lock.run(broker.name, async () => {
      const next = { ...broker, ...patch };
      const catalog = await this.fetchCatalog(next);
      try {
        const updated = (await this.d.store.serviceBrokers.update(broker.guid, { ...patch, catalog_fetched_at: now(), catalog_error: null }))!;
        await syncCatalog(this.d.store, updated, catalog);
        return updated;
      } catch (err) {
        if (err instanceof DbError && err.code === 'unique_violation') throw errors.uniqueness(`Name must be unique: a service broker named ${patch.name} exists`);
        throw err;
      }
    });
  }

  /** Deletes a broker with its offerings and plans: 422 while it has service instances. */
  async remove(broker: ServiceBrokerRecord): Promise<void> {
    const plans = await this.d.store.servicePlans.list({ broker_guid: broker.guid });
    const instances = await this.d.store.serviceInstances.list({ plan_guid: plans.map((p) => p.guid) });
    if (instances.length > 0) {
      throw errors.unprocessable(`Can not remove brokers that have associated service instances: ${instances.map((i) => i.name).join(', ')}`);
    }
    await this.d.store.transaction(async (tx) => {
      await tx.servicePlans.delete({ broker_guid: broker.guid });
      await tx.serviceOfferings.delete({ broker_guid: broker.guid });
      await tx.serviceBrokers.delete({ guid: broker.guid });
    });
  }

  /** A gateway announced itself: register it, or refresh its URL and (if stale) its catalog. */
  async announced(msg: ServiceGatewayAnnounce): Promise<void> {
    const cfg = this.d.config.service_brokers;
    const cred = cfg.credentials[msg.name] ?? cfg.credentials[msg.label] ?? cfg.default_credentials;
    if (!cred) {
      if (!this.warned.has(msg.name)) this.d.log.warn({ broker: msg.name, label: msg.label }, 'a gateway announced itself but service_brokers has no credential for it; ignored');
      this.warned.add(msg.name);
      return;
    }
    try {
      const known = await this.d.store.serviceBrokers.find({ name: msg.name });
      if (!known) {
        await this.register({ name: msg.name, url: msg.url, ...cred }, 'announce', msg.label);
        return;
      }
      if (known.source !== 'announce') return; // an admin's broker of that name: not the gateway's to change
      const stale = !known.catalog_fetched_at || Date.now() - Date.parse(known.catalog_fetched_at) > cfg.catalog_refresh_s * 1000;
      const moved = known.url !== msg.url || known.username !== cred.username || known.password !== cred.password;
      if (moved) await this.d.store.serviceBrokers.update(known.guid, { url: msg.url, ...cred, label: msg.label });
      if (stale) await this.refresh({ ...known, url: msg.url, ...cred });
    } catch (err) {
      this.d.log.warn({ broker: msg.name, url: msg.url, err: (err as Error).message }, 'registering an announced service broker failed');
    }
  }

  /** Fetches the catalog again; a failure is recorded on the broker and logged. */
  async refresh(broker: ServiceBrokerRecord): Promise<void> {
    await this.lock.run(broker.name, async () => {
      try {
        const catalog = await this.fetchCatalog(broker);
        await syncCatalog(this.d.store, broker, catalog);
        await this.d.store.serviceBrokers.update(broker.guid, { catalog_fetched_at: now(), catalog_error: null });
      } catch (err) {
        const message = (err as Error).message;
        await this.d.store.serviceBrokers.update(broker.guid, { catalog_error: message });
        this.d.log.warn({ broker: broker.name, err: message }, 'fetching a service broker catalog failed');
      }
    });
  }

  private async fetchCatalog(b: BrokerRegistration) {
    let body: unknown;
    try {
      body = await this.client(b).catalog();
    } catch (err) {
      if (err instanceof BrokerError) throw errors.unprocessable(`The service broker could not be registered: ${err.message}`);
      throw err;
    }
    const parsed = parseCatalog(body);
    if ('problem' in parsed) throw errors.unprocessable(`The service broker could not be registered: ${b.name}: ${parsed.problem}`);
    return parsed.catalog;
  }
}
