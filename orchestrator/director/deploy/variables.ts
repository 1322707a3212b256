// The manifest's generated variables in the director's SQLite, one namespace per deployment
// (`/<deployment>/<name>`, as BOSH's config server names them): generated once, kept, reused by
// every later deploy. A diff or a dry run reads the kept values but keeps what it would
// generate in memory only, so looking changes nothing.
import type { VariableStore } from '../../manifest/mod.ts';
import type { DirectorStore } from '../store.ts';

export function variableKey(deployment: string, name: string): string {
  return `/${deployment}/${name}`;
}

export class DeploymentVariableStore implements VariableStore {
  private readonly scratch = new Map<string, unknown>();

  constructor(
    private readonly store: DirectorStore,
    readonly deployment: string,
    /** False for a diff or a dry run: new values stay in memory. */
    private readonly persist: boolean,
  ) {}

  async get(name: string): Promise<unknown | undefined> {
    if (this.scratch.has(name)) return this.scratch.get(name);
    return this.store.variableStore().get(variableKey(this.deployment, name));
  }

  async set(name: string, value: unknown): Promise<void> {
    if (!this.persist) {
      this.scratch.set(name, value);
      return;
    }
    await this.store.variableStore().set(variableKey(this.deployment, name), value);
  }
}
