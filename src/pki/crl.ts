// CRLs signed by the issuing intermediate (and by retired intermediates whose keys are archived, so that
// certificates they issued can still be revoked). One PEM file may hold several CRLs; OpenSSL reads them all.
import { X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Context } from '../context.js';
import { writeFileAtomic } from '../deploy/atomic.js';
import { McpkiError } from '../errors.js';
import { loadIssuingCa } from './ca.js';
import { fromPem, toPem } from './der.js';
import { keyIdentifier, readPrivateKey, signatureAlgorithmFor } from './keys.js';
import { readCertificate, signCrl, type RevocationReason } from './x509.js';

const DAY = 86_400_000;
export const DEFAULT_CRL_DAYS = 7;

export interface CrlOptions {
  /** also write the PEM here (it is always written to HOME/ca/crl.pem) */
  out?: string;
  /** nextUpdate, in days from now */
  days?: number;
}

export interface CrlResult {
  pem: string;
  number: string;
  thisUpdate: string;
  nextUpdate: string;
  revoked: { serial: string; name: string; revokedAt: string; reason: string; issuerSerial: string }[];
  paths: string[];
}

interface Signer {
  der: Buffer;
  key: import('node:crypto').KeyObject;
}

function retiredSigners(caDir: string): Signer[] {
  const archive = join(caDir, 'retired');
  if (!existsSync(archive)) return [];
  return readdirSync(archive)
    .filter((file) => /^intermediate-[0-9A-F]+\.crt$/.test(file))
    .flatMap((file) => {
      const keyPath = join(archive, file.replace(/\.crt$/, '.key'));
      if (!existsSync(keyPath)) return [];
      const der = fromPem(readFileSync(join(archive, file), 'utf8'), 'CERTIFICATE')[0]!;
      return [{ der, key: readPrivateKey(readFileSync(keyPath, 'utf8')) }];
    });
}

export function generateCrl(context: Context, options: CrlOptions = {}): CrlResult {
  const days = options.days ?? DEFAULT_CRL_DAYS;
  if (!Number.isInteger(days) || days < 1 || days > 365) {
    throw new McpkiError('INVALID_DAYS', `--days must be a whole number from 1 to 365, got ${String(options.days)}`, `the default is ${DEFAULT_CRL_DAYS}`);
  }
  const current = loadIssuingCa(context);
  const store = context.store();
  const now = context.now();
  const nextUpdate = new Date(now.getTime() + days * DAY);
  const number = store.nextCounter('crl_number');
  const signers: Signer[] = [{ der: current.der, key: current.key }, ...retiredSigners(context.layout.caDir)];
  const revoked: CrlResult['revoked'] = [];
  let pem = '';
  for (const signer of signers) {
    const cert = new X509Certificate(signer.der);
    if (new Date(cert.validTo) < now) continue;
    const issuerSerial = cert.serialNumber.toUpperCase();
    const parts = readCertificate(signer.der);
    const entries = store.revokedBy(issuerSerial);
    const der = signCrl(
      {
        issuer: parts.subject,
        authorityKeyId: keyIdentifier(parts.spki),
        number,
        thisUpdate: now,
        nextUpdate,
        revoked: entries.map((e) => ({ serial: Buffer.from(e.serial, 'hex'), revokedAt: new Date(e.revokedAt!), reason: e.revocationReason as RevocationReason })),
      },
      signatureAlgorithmFor(signer.key),
    );
    pem += toPem('X509 CRL', der);
    for (const e of entries) revoked.push({ serial: e.serial, name: e.name, revokedAt: e.revokedAt!, reason: e.revocationReason!, issuerSerial });
  }
  const paths = [join(context.layout.caDir, 'crl.pem')];
  if (options.out) paths.push(options.out);
  for (const path of paths) writeFileAtomic(path, pem, 0o644);
  store.addEvent({ type: 'crl.generated', detail: { number: number.toString(), revoked: revoked.length, paths } });
  return { pem, number: number.toString(), thisUpdate: now.toISOString(), nextUpdate: nextUpdate.toISOString(), revoked, paths };
}
