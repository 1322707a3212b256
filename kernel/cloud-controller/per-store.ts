// Parts made once per Store and shared by everything using that store — the request scope,
// the quota guard's lock, the audit log's clock — so the API modules and the runner, handed
// the same store, share one of each.
import type { Store } from './db/mod.ts';

/** `make` wrapped so that each store gets one result, made at its first call. */
export function perStore<T extends object>(make: (store: Store) => T): (store: Store) => T {
  const made = new WeakMap<Store, T>();
  return (store) => {
    let it = made.get(store);
    if (!it) made.set(store, (it = make(store)));
    return it;
  };
}
