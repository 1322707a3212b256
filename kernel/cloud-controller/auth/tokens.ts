// OAuth tokens: signed JWTs (HS256, key from config) that expire. An access token carries
// the user's guid, name and scopes; a refresh token only identifies the user and can be
// traded for a new pair. Both are checked against the user table on use, so a deleted user
// is locked out at once.
import { randomUUID } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';

export const ISSUER = 'ingot-cloud-controller';
export const ADMIN_SCOPE = 'cloud_controller.admin';
export const USER_SCOPES = ['cloud_controller.read', 'cloud_controller.write', 'openid'];

export interface TokenSubject {
  guid: string;
  username: string;
  admin: boolean;
}

export interface TokenPair {
  access_token: string;
  token_type: 'bearer';
  expires_in: number;
  refresh_token: string;
  scope: string;
  jti: string;
}

export interface VerifiedToken {
  user_guid: string;
  username: string;
  scopes: string[];
}

export class TokenError extends Error {
  override name = 'TokenError';
  constructor(
    readonly code: 'expired' | 'invalid',
    message: string,
  ) {
    super(message);
  }
}

export class TokenIssuer {
  private readonly key: Uint8Array;

  constructor(
    secret: string,
    private readonly accessTtlS: number,
    private readonly refreshTtlS: number,
  ) {
    this.key = new TextEncoder().encode(secret);
  }

  async issue(user: TokenSubject): Promise<TokenPair> {
    const scopes = user.admin ? [ADMIN_SCOPE, ...USER_SCOPES] : USER_SCOPES;
    const jti = randomUUID();
    const access_token = await new SignJWT({ user_name: user.username, scope: scopes, typ: 'access' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(user.guid)
      .setIssuer(ISSUER)
      .setJti(jti)
      .setIssuedAt()
      .setExpirationTime(`${this.accessTtlS}s`)
      .sign(this.key);
    const refresh_token = await new SignJWT({ typ: 'refresh' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(user.guid)
      .setIssuer(ISSUER)
      .setJti(`${jti}-r`)
      .setIssuedAt()
      .setExpirationTime(`${this.refreshTtlS}s`)
      .sign(this.key);
    return { access_token, token_type: 'bearer', expires_in: this.accessTtlS, refresh_token, scope: scopes.join(' '), jti };
  }

  async verifyAccess(token: string): Promise<VerifiedToken> {
    const payload = await this.verify(token, 'access');
    const scopes = Array.isArray(payload.scope) ? payload.scope.filter((s): s is string => typeof s === 'string') : [];
    return { user_guid: String(payload.sub), username: String(payload.user_name ?? ''), scopes };
  }

  /** The user guid a refresh token stands for. */
  async verifyRefresh(token: string): Promise<string> {
    return String((await this.verify(token, 'refresh')).sub);
  }

  private async verify(token: string, typ: 'access' | 'refresh'): Promise<Record<string, unknown>> {
    try {
      const { payload } = await jwtVerify(token, this.key, { issuer: ISSUER, algorithms: ['HS256'] });
      if (payload.typ !== typ || typeof payload.sub !== 'string') throw new TokenError('invalid', `Not an ${typ} token`);
      return payload;
    } catch (err) {
      if (err instanceof TokenError) throw err;
      if (err instanceof joseErrors.JWTExpired) throw new TokenError('expired', 'Token has expired');
      throw new TokenError('invalid', 'Invalid Auth Token');
    }
  }
}
