// Generated variables (`variables:` in a manifest): their values are made once, kept in a
// VariableStore the director persists, and reused on every later deploy — regenerating a
// password on each deploy would lock every job out of its peers.
import { createHash, generateKeyPairSync, randomInt } from 'node:crypto';

export type VariableType = 'password' | 'certificate' | 'ssh' | 'rsa';

export interface VariableDefinition {
  name: string;
  type: VariableType;
  options: Record<string, unknown>;
}

/** Where generated values live. The director's implementation persists them; async so it may. */
export interface VariableStore {
  get(name: string): Promise<unknown | undefined>;
  set(name: string, value: unknown): Promise<void>;
}

/** A VariableStore in memory: for tests and for `ingot interpolate`. */
export class MemoryVariableStore implements VariableStore {
  readonly values = new Map<string, unknown>();
  async get(name: string): Promise<unknown | undefined> {
    return this.values.get(name);
  }
  async set(name: string, value: unknown): Promise<void> {
    this.values.set(name, value);
  }
}

const ALPHANUMERIC = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** Letters and digits only: a password lands in URLs and config files unescaped. */
export function generatePassword(length = 30): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHANUMERIC[randomInt(ALPHANUMERIC.length)];
  return out;
}

/** `{private_key, public_key}` in PEM, as BOSH's `rsa` type. */
export function generateRsa(bits = 2048): { private_key: string; public_key: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  return {
    private_key: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
    public_key: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** `{private_key, public_key, public_key_fingerprint}`, the public key in authorized_keys form. */
export function generateSsh(bits = 2048): { private_key: string; public_key: string; public_key_fingerprint: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  const jwk = publicKey.export({ format: 'jwk' });
  const blob = Buffer.concat([sshString(Buffer.from('ssh-rsa')), sshString(mpint(jwk.e!)), sshString(mpint(jwk.n!))]);
  const md5 = createHash('md5').update(blob).digest('hex');
  return {
    private_key: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
    public_key: `ssh-rsa ${blob.toString('base64')}`,
    public_key_fingerprint: md5.match(/../g)!.join(':'),
  };
}

function sshString(b: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

/** SSH mpint: big-endian, with a leading zero when the top bit is set (it is unsigned). */
function mpint(base64url: string): Buffer {
  const b = Buffer.from(base64url, 'base64url');
  return b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b;
}
