// Credentials at rest: a binding's (and a user-provided instance's) credentials are sealed
// with AES-256-GCM under a key derived from the controller's jwt.secret, so a copy of the
// database alone does not hand out every service's passwords. Controllers sharing a database
// share the secret, so any of them opens what another sealed.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

const VERSION = 'v1';

export interface CredentialBox {
  seal(value: Record<string, unknown>): string;
  open(sealed: string): Record<string, unknown>;
}

export function credentialBox(secret: string): CredentialBox {
  const key = Buffer.from(hkdfSync('sha256', secret, 'ingot-cc', 'service credentials', 32));
  return {
    seal(value) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
      return [VERSION, iv.toString('base64'), cipher.getAuthTag().toString('base64'), body.toString('base64')].join(':');
    },
    open(sealed) {
      const [version, iv, tag, body] = sealed.split(':');
      if (version !== VERSION || !iv || !tag || body === undefined) throw new Error('Opening sealed credentials: not sealed by this controller');
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64'));
      decipher.setAuthTag(Buffer.from(tag, 'base64'));
      const text = Buffer.concat([decipher.update(Buffer.from(body, 'base64')), decipher.final()]).toString('utf8');
      return JSON.parse(text) as Record<string, unknown>;
    },
  };
}
