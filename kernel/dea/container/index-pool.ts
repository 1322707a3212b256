// A pool of small integers [0, size): uids, host ports and address slots are all offsets into
// a configured range. Lowest free first, so a restarted DEA that re-claims its containers'
// indices hands out the same numbers as before.

import { PoolExhaustedError } from './errors.ts';

export class IndexPool {
  readonly #used = new Set<number>();

  constructor(
    readonly name: string,
    readonly size: number,
  ) {}

  allocate(): number {
    for (let i = 0; i < this.size; i++) {
      if (!this.#used.has(i)) {
        this.#used.add(i);
        return i;
      }
    }
    throw new PoolExhaustedError(this.name, this.size);
  }

  /** Marks a known index as used (recovery); false when it is out of range or taken. */
  claim(index: number): boolean {
    if (!Number.isInteger(index) || index < 0 || index >= this.size || this.#used.has(index)) return false;
    this.#used.add(index);
    return true;
  }

  release(index: number): void {
    this.#used.delete(index);
  }

  get inUse(): number {
    return this.#used.size;
  }
}
