// /v3/users: the admin creates, lists and deletes users; any user reads itself (the list stays
// admin-only). Unlike CF (where UAA owns passwords) the controller holds them, hashed with
// scrypt. A new user starts with no role, as in CF: it sees nothing until an admin or an org
// manager gives it one (`ingot set-space-role`). A user's roles are deleted with it.
import { z } from 'zod';
import { hashPassword } from '../auth/passwords.ts';
import { DbError } from '../db/mod.ts';
import { errors } from '../errors.ts';
import { readJson } from '../http/body.ts';
import { csv, listQuery } from '../http/query.ts';
import type { ApiServer } from '../http/server.ts';
import { presentUser } from '../presenters.ts';
import { listOf, mustGet, newGuid, noContent, now, ok, userOf } from './common.ts';
import type { Deps } from './deps.ts';

const username = z.string().min(1).max(255).regex(/^[A-Za-z0-9._@+-]+$/, 'must be letters, digits and . _ @ + -');
const password = z.string().min(8, 'must be at least 8 characters').max(1024);

const createUser = z.object({ username, password, admin: z.boolean().default(false) }).strict();
const updateUser = z.object({ password: password.optional(), admin: z.boolean().optional() }).strict();

export function registerUsers(server: ApiServer, d: Deps): void {
  server.route('GET', '/v3/users', 'admin', (ctx) =>
    listOf(ctx, d.store.users, listQuery({ usernames: csv.optional(), guids: csv.optional() }, ['created_at', 'updated_at', 'username']), (q) => ({ username: q.usernames, guid: q.guids }), (u) => presentUser(u, ctx.baseUrl)),
  );

  server.route('POST', '/v3/users', 'admin', async (ctx) => {
    const body = await readJson(ctx.req, createUser);
    const at = now();
    try {
      const user = { guid: newGuid(), username: body.username, password_hash: await hashPassword(body.password), admin: body.admin, created_at: at, updated_at: at };
      await d.store.users.insert(user);
      return ok(presentUser(user, ctx.baseUrl), 201);
    } catch (err) {
      if (err instanceof DbError && err.code === 'unique_violation') throw errors.uniqueness(`User '${body.username}' already exists.`);
      throw err;
    }
  });

  server.route('GET', '/v3/users/:guid', 'user', async (ctx) => {
    const me = userOf(ctx.principal);
    if (!me.admin && me.guid !== ctx.params.guid) throw errors.notFound('User');
    return ok(presentUser(await mustGet(d.store.users, ctx.params.guid!, 'User'), ctx.baseUrl));
  });

  server.route('PATCH', '/v3/users/:guid', 'user', async (ctx) => {
    const me = userOf(ctx.principal);
    if (!me.admin && me.guid !== ctx.params.guid) throw errors.notFound('User');
    const body = await readJson(ctx.req, updateUser);
    if (body.admin !== undefined && !me.admin) throw errors.notAuthorized();
    await mustGet(d.store.users, ctx.params.guid!, 'User');
    const user = await d.store.users.update(ctx.params.guid!, {
      ...(body.password ? { password_hash: await hashPassword(body.password) } : {}),
      ...(body.admin !== undefined ? { admin: body.admin } : {}),
    });
    return ok(presentUser(user!, ctx.baseUrl));
  });

  server.route('DELETE', '/v3/users/:guid', 'admin', async (ctx) => {
    const user = await mustGet(d.store.users, ctx.params.guid!, 'User');
    if (user.username === d.config.admin.user) throw errors.unprocessable('The bootstrap admin user from the config cannot be deleted.');
    await d.store.transaction(async (tx) => {
      await tx.roles.delete({ user_guid: user.guid });
      await tx.users.delete({ guid: user.guid });
    });
    return noContent;
  });
}
