// One chunk of a batch: keys generated, certificates signed and every file written to an unsynced temp name
// next to its target. Runs in batch issuance's worker threads (batch-worker.ts) and, for small batches, in
// the main thread; the main thread then syncs, records and renames (issue.ts).
import { createHash } from 'node:crypto';
import { tryUnlink, type FileToWrite } from '../fs/atomic.js';
import { writeUnsyncedTemp } from '../fs/batch-files.js';
import { toPem } from './der.js';
import { generateEncodedKey, readPrivateKey, type KeyType } from './keys.js';
import { colonHex, signLeaf, type LeafPlan, type LeafSigner } from './leaf.js';
import { encodePkcs12 } from './pkcs12.js';
import { randomSerials } from './x509.js';

/** A planned certificate as a worker gets it (plain data). */
export interface ChunkPlan extends LeafPlan {
  keyType: KeyType;
  /** ca: where this certificate's folder gets its ca.crt, when this one writes it */
  paths: { cert: string; key: string; fullchain: string; p12?: string; ca?: string };
  p12?: { password: string; legacy: boolean };
}

/** The CA as a worker gets it: the signer and the intermediate's certificate (for the full chain and PKCS#12). */
export interface ChunkCa {
  signer: LeafSigner;
  pem: string;
  der: Buffer;
  rootPem: string;
}

/** One signed certificate whose files wait at temp names. */
export interface MadeLeaf {
  serial: string;
  subject: string;
  notBefore: string;
  notAfter: string;
  fingerprint: string;
  /** RFC 8705 x5t#S256 (base64url SHA-256 of the DER), from the same digest as the fingerprint */
  thumbprint: string;
  pem: string;
  /** target paths, and the temp file written for each */
  targets: string[];
  temps: string[];
}

/**
 * The certificate's SHA-256 once, in both forms the inventory keeps: the fingerprint as fingerprintOf writes
 * it (upper-case hex with colons) and the thumbprint as x5tS256 does (base64url).
 */
export function digestsOf(der: Buffer): { fingerprint: string; thumbprint: string } {
  const digest = createHash('sha256').update(der).digest();
  return {
    fingerprint: colonHex(digest),
    thumbprint: digest.toString('base64url'),
  };
}

/** Keys, signatures and temp files for a chunk. On failure every temp file it wrote is removed. */
export function makeLeaves(ca: ChunkCa, plans: readonly ChunkPlan[], nowMs: number): MadeLeaf[] {
  const now = new Date(nowMs);
  const made: MadeLeaf[] = [];
  const temps: string[] = [];
  const serials = randomSerials(plans.length);
  try {
    for (const [i, plan] of plans.entries()) {
      const key = generateEncodedKey(plan.keyType);
      const signed = signLeaf(ca.signer, plan, key, now, serials[i]);
      const pem = toPem('CERTIFICATE', signed.der);
      const files: FileToWrite[] = [
        { path: plan.paths.key, data: key.privatePem, mode: 0o600 },
        { path: plan.paths.cert, data: pem, mode: 0o644 },
        { path: plan.paths.fullchain, data: pem + ca.pem, mode: 0o644 },
      ];
      if (plan.p12 && plan.paths.p12) {
        const p12 = encodePkcs12({
          key: readPrivateKey(key.privatePem),
          certificates: [signed.der, ca.der],
          password: plan.p12.password,
          friendlyName: plan.name,
          legacy: plan.p12.legacy,
        });
        files.push({ path: plan.paths.p12, data: p12, mode: 0o600 });
      }
      if (plan.paths.ca) files.push({ path: plan.paths.ca, data: ca.rootPem, mode: 0o644 });
      const mine: string[] = [];
      for (const file of files) {
        const temp = writeUnsyncedTemp(file);
        temps.push(temp);
        mine.push(temp);
      }
      made.push({
        serial: signed.serial.toString('hex').toUpperCase(),
        subject: signed.subject.map((a) => `${a.type}=${a.value}`).join(', '),
        notBefore: signed.notBefore.toISOString(),
        notAfter: signed.notAfter.toISOString(),
        ...digestsOf(signed.der),
        pem,
        targets: files.map((file) => file.path),
        temps: mine,
      });
    }
  } catch (error) {
    temps.forEach(tryUnlink);
    throw error;
  }
  return made;
}
