// Who is calling: the authenticator every route runs (bearer JWT, admin scope, the health
// managers' Basic credential, a signed URL), and `POST /oauth/token` — the password and
// refresh_token grants, UAA-shaped so OAuth clients work unchanged.
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import { verifyPassword } from '../auth/passwords.ts';
import { ADMIN_SCOPE, TokenError } from '../auth/tokens.ts';
import { ApiError, errors } from '../errors.ts';
import { readText, validate } from '../http/body.ts';
import type { ApiServer, Authenticator, Principal } from '../http/server.ts';
import { ok } from './common.ts';
import type { Deps } from './deps.ts';

export function authenticator(d: Deps): Authenticator {
  return async (mode, req, url): Promise<Principal> => {
    switch (mode) {
      case 'none':
        return { kind: 'anonymous' };
      case 'bulk': {
        const basic = basicAuth(req);
        if (!basic) throw new ApiError(401, 10002, 'CF-NotAuthenticated', 'Authentication error', { headers: { 'WWW-Authenticate': 'Basic realm="ingot bulk"' } });
        if (!safeEqual(basic.user, d.config.bulk_api.user) || !safeEqual(basic.password, d.config.bulk_api.password)) throw errors.badCredentials();
        return { kind: 'bulk' };
      }
      case 'signed': {
        const method = req.method === 'GET' || req.method === 'HEAD' ? 'GET' : 'PUT';
        const check = d.signer.check(method, url.pathname, url.searchParams);
        if (!check.ok) {
          if (check.reason === 'missing') throw errors.notAuthenticated();
          throw new ApiError(403, 10003, 'CF-NotAuthorized', check.reason === 'expired' ? 'The signed URL has expired' : 'The signature of the URL is invalid');
        }
        return { kind: 'signed' };
      }
      case 'user':
      case 'admin': {
        const header = req.headers.authorization ?? '';
        const m = /^bearer\s+(\S+)$/i.exec(header);
        if (!m) throw errors.notAuthenticated();
        let verified;
        try {
          verified = await d.tokens.verifyAccess(m[1]!);
        } catch (err) {
          if (err instanceof TokenError) throw errors.invalidToken(err.code === 'expired' ? 'Invalid Auth Token: the token has expired' : 'Invalid Auth Token');
          throw err;
        }
        const user = await d.store.users.get(verified.user_guid);
        if (!user) throw errors.invalidToken('Invalid Auth Token: the user no longer exists');
        // The scope in the token and the flag in the table must both say admin.
        const admin = user.admin && verified.scopes.includes(ADMIN_SCOPE);
        if (mode === 'admin' && !admin) throw errors.notAuthorized();
        return { kind: 'user', guid: user.guid, username: user.username, admin };
      }
    }
  };
}

const tokenRequest = z.discriminatedUnion('grant_type', [
  z.object({ grant_type: z.literal('password'), username: z.string().min(1), password: z.string().min(1) }).passthrough(),
  z.object({ grant_type: z.literal('refresh_token'), refresh_token: z.string().min(1) }).passthrough(),
]);

export function registerAuth(server: ApiServer, d: Deps): void {
  server.route('POST', '/oauth/token', 'none', async ({ req }) => {
    // OAuth clients send a form; JSON is accepted too.
    const text = await readText(req, 64 * 1024);
    const type = String(req.headers['content-type'] ?? '');
    let raw: unknown;
    if (/json/i.test(type)) {
      try {
        raw = JSON.parse(text || '{}');
      } catch (err) {
        throw errors.messageParse((err as Error).message);
      }
    } else {
      raw = Object.fromEntries(new URLSearchParams(text));
    }
    const body = validate(tokenRequest, raw);
    if (body.grant_type === 'password') {
      const user = await d.store.users.find({ username: body.username });
      // Verify even for unknown users so timing does not reveal which names exist.
      const okPassword = await verifyPassword(body.password, user?.password_hash ?? DUMMY_HASH);
      if (!user || !okPassword) throw oauthError(401, 'unauthorized', 'Bad credentials');
      return ok(await d.tokens.issue(user));
    }
    let guid: string;
    try {
      guid = await d.tokens.verifyRefresh(body.refresh_token);
    } catch (err) {
      if (err instanceof TokenError) throw oauthError(401, 'invalid_token', err.code === 'expired' ? 'The refresh token has expired' : 'Invalid refresh token');
      throw err;
    }
    const user = await d.store.users.get(guid);
    if (!user) throw oauthError(401, 'invalid_token', 'The user no longer exists');
    return ok(await d.tokens.issue(user));
  });
}

/** OAuth errors carry `error`/`error_description` (for OAuth clients) inside the v3 envelope. */
function oauthError(status: number, error: string, description: string): ApiError {
  const e = new ApiError(status, 10002, 'CF-NotAuthenticated', description);
  const toJSON = e.toJSON.bind(e);
  e.toJSON = () => ({ ...toJSON(), error, error_description: description }) as ReturnType<typeof toJSON>;
  return e;
}

// A valid hash of a random password, used when the user does not exist.
const DUMMY_HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$' + Buffer.alloc(64).toString('base64');

function basicAuth(req: IncomingMessage): { user: string; password: string } | undefined {
  const m = /^basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) return undefined;
  return { user: decoded.slice(0, i), password: decoded.slice(i + 1) };
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
