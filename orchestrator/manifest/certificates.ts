// Certificate variables without a dependency: node:crypto makes keys and signatures but
// has no X.509 builder, so the few DER structures a certificate needs (RFC 5280) are
// written here. RSA 2048 with SHA-256, v3, with the extensions BOSH sets: basic
// constraints, key usage, extended key usage and subject alternative names.
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { isIPv4 } from 'node:net';

export interface CertificateRequest {
  commonName: string;
  alternativeNames: string[];
  isCa: boolean;
  /** `server_auth`, `client_auth`. */
  extendedKeyUsage: string[];
  durationDays: number;
  /** The issuer; absent means self-signed. */
  ca?: { certificate: string; private_key: string } | undefined;
}

/** `{ca, certificate, private_key}` in PEM, the shape BOSH gives a certificate variable. */
export function generateCertificate(req: CertificateRequest): { ca: string; certificate: string; private_key: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const subject = name(req.commonName);
  const issuer = req.ca ? subjectOf(req.ca.certificate) : subject;
  const signer = req.ca ? createPrivateKey(req.ca.private_key) : privateKey;
  // Backdated a minute so a VM whose clock lags slightly still accepts it.
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(notBefore.getTime() + req.durationDays * 86_400_000);
  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  const sha256WithRsa = seq(oid('1.2.840.113549.1.1.11'), Buffer.from([0x05, 0x00]));
  const extensions: Buffer[] = [
    extension('2.5.29.19', true, seq(...(req.isCa ? [Buffer.from([0x01, 0x01, 0xff])] : []))),
    // CA: digitalSignature, keyCertSign, cRLSign; leaf: digitalSignature, keyEncipherment.
    extension('2.5.29.15', true, req.isCa ? Buffer.from([0x03, 0x02, 0x01, 0x86]) : Buffer.from([0x03, 0x02, 0x05, 0xa0])),
    extension('2.5.29.14', false, tlv(0x04, createHash('sha1').update(spki).digest())),
  ];
  const usages = req.extendedKeyUsage.map((u) => EKU[u]).filter((o): o is string => o !== undefined);
  if (usages.length > 0) extensions.push(extension('2.5.29.37', false, seq(...usages.map(oid))));
  const sans = [...new Set(req.alternativeNames)];
  if (sans.length > 0) {
    extensions.push(
      extension(
        '2.5.29.17',
        false,
        seq(...sans.map((n) => (isIPv4(n) ? tlv(0x87, Buffer.from(n.split('.').map(Number))) : tlv(0x82, Buffer.from(n, 'ascii'))))),
      ),
    );
  }
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))),
    tlv(0x02, serial),
    sha256WithRsa,
    issuer,
    seq(time(notBefore), time(notAfter)),
    subject,
    spki,
    tlv(0xa3, seq(...extensions)),
  );
  const signature = sign('sha256', tbs, signer);
  const der = seq(tbs, sha256WithRsa, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
  const certificate = pem('CERTIFICATE', der);
  return {
    ca: req.ca ? req.ca.certificate : certificate,
    certificate,
    private_key: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
  };
}

const EKU: Record<string, string> = { server_auth: '1.3.6.1.5.5.7.3.1', client_auth: '1.3.6.1.5.5.7.3.2' };

function pem(label: string, der: Buffer): string {
  const body = der.toString('base64').match(/.{1,64}/g)!.join('\n');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

function tlv(tag: number, body: Buffer): Buffer {
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...len]), body]);
}

function seq(...items: Buffer[]): Buffer {
  return tlv(0x30, Buffer.concat(items));
}

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const bytes = [40 * a! + b!];
  for (const n of rest) {
    const chunk = [n & 0x7f];
    for (let v = n >>> 7; v > 0; v >>>= 7) chunk.unshift((v & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

function name(commonName: string): Buffer {
  return seq(tlv(0x31, seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(commonName, 'utf8')))));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [Buffer.from([0x01, 0x01, 0xff])] : []), tlv(0x04, value));
}

/** UTCTime until 2049, GeneralizedTime after, as RFC 5280 requires. */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2), 'ascii')) : tlv(0x18, Buffer.from(iso, 'ascii'));
}

/** The subject Name of a PEM certificate, as DER, to become the issuer of the certificates it signs. */
function subjectOf(certPem: string): Buffer {
  const der = Buffer.from(certPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const cert = element(der, 0);
  const tbs = element(der, cert.start);
  const fields: Element[] = [];
  for (let o = tbs.start; o < tbs.end; o = fields[fields.length - 1]!.end) fields.push(element(der, o));
  // version [0] (optional), serial, signature algorithm, issuer, validity, subject
  const subject = fields[fields[0]!.tag === 0xa0 ? 5 : 4]!;
  return der.subarray(subject.offset, subject.end);
}

interface Element {
  tag: number;
  /** Where the element begins (its tag). */
  offset: number;
  /** Where its content begins, and ends. */
  start: number;
  end: number;
}

function element(der: Buffer, offset: number): Element {
  const tag = der[offset]!;
  let len = der[offset + 1]!;
  let start = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[offset + 2 + i]!;
    start += n;
  }
  return { tag, offset, start, end: start + len };
}
