// What exists from the first start and is kept true at every start: the admin user of the
// config (its password follows the config), the default organization and space, and the
// system and apps domains as shared domains. Controllers sharing one database may start at
// the same moment: whichever inserts second finds what the first inserted.
import { hashPassword, verifyPassword } from './auth/passwords.ts';
import type { CcConfig } from './config.ts';
import { DbError, type Store } from './db/mod.ts';
import { newGuid, now } from './ids.ts';

export interface Bootstrapped {
  adminGuid: string;
  defaultSpaceGuid: string;
  domains: { system: string; apps: string };
}

export async function bootstrap(store: Store, config: CcConfig): Promise<Bootstrapped> {
  const at = now();
  let admin = await findOrInsert(
    () => store.users.find({ username: config.admin.user }),
    async () => store.users.insert({ guid: newGuid(), username: config.admin.user, password_hash: await hashPassword(config.admin.password), admin: true, created_at: at, updated_at: at }),
  );
  if (!admin.admin || !(await verifyPassword(config.admin.password, admin.password_hash))) {
    admin = (await store.users.update(admin.guid, { admin: true, password_hash: await hashPassword(config.admin.password) }))!;
  }

  const org = await findOrInsert(
    () => store.organizations.find({ name: config.default_organization }),
    () => store.organizations.insert({ guid: newGuid(), name: config.default_organization, created_at: at, updated_at: at }),
  );
  const space = await findOrInsert(
    () => store.spaces.find({ organization_guid: org.guid, name: config.default_space }),
    () => store.spaces.insert({ guid: newGuid(), name: config.default_space, organization_guid: org.guid, created_at: at, updated_at: at }),
  );

  const apps = config.apps_domain ?? config.system_domain;
  for (const name of new Set([config.system_domain, apps])) {
    await findOrInsert(
      () => store.domains.find({ name }),
      () => store.domains.insert({ guid: newGuid(), name, internal: false, organization_guid: null, created_at: at, updated_at: at }),
    );
  }
  return { adminGuid: admin.guid, defaultSpaceGuid: space.guid, domains: { system: config.system_domain, apps } };
}

/** The row `find` finds; else the one `insert` makes — or, when another controller inserted it
 *  first (a unique violation), the one it made. */
async function findOrInsert<R>(find: () => Promise<R | undefined>, insert: () => Promise<R>): Promise<R> {
  const found = await find();
  if (found) return found;
  try {
    return await insert();
  } catch (err) {
    if (!(err instanceof DbError && err.code === 'unique_violation')) throw err;
    const theirs = await find();
    if (!theirs) throw err;
    return theirs;
  }
}
