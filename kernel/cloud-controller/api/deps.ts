// What every API module is handed: the controller's parts, wired once in component.ts.
import type { Logger } from 'pino';
import type { Bus } from '../../bus/mod.ts';
import type { AppRunner } from '../app-runner.ts';
import type { UrlSigner } from '../auth/signed-urls.ts';
import type { TokenIssuer } from '../auth/tokens.ts';
import type { Blobstore } from '../blobstore.ts';
import type { CcConfig } from '../config.ts';
import type { Store } from '../db/mod.ts';
import type { ApiServer } from '../http/server.ts';
import type { LogStore } from '../logs.ts';
import type { BrokerRegistry } from '../services/brokers.ts';
import type { CredentialBox } from '../services/credential-box.ts';
import type { ServiceOperations } from '../services/operations.ts';
import type { Stager } from '../staging.ts';
import type { UploadClaims } from '../upload-claims.ts';

export interface Deps {
  config: CcConfig;
  store: Store;
  blobs: Blobstore;
  bus: Bus;
  log: Logger;
  tokens: TokenIssuer;
  signer: UrlSigner;
  runner: AppRunner;
  stager: Stager;
  uploads: UploadClaims;
  logs: LogStore;
  /** The apps domain (default shared domain) and the system domain, as resolved at boot. */
  domains: { system: string; apps: string };
  /** The default space, where apps go when no space is named. */
  defaultSpaceGuid: string;
  /** Service brokers, what is done at them, and the box bindings' credentials are sealed in. */
  services: { brokers: BrokerRegistry; operations: ServiceOperations; box: CredentialBox };
}

export type RegisterRoutes = (server: ApiServer, deps: Deps) => void;
