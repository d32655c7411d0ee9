// The declared local-CA certificates of one chunk of an apply, issued together: the same certificates, files
// and inventory rows as issueCertificate makes one at a time (HOME/certs/NAME/NAME.key, .crt, .fullchain.pem
// and ca.crt; a `certificate.issued` event each), with the same guarantees, at a fraction of the cost:
//   - keys generated on libuv's thread pool (both cores), signed on the main thread;
//   - every file written to a temp file next to it, in parallel, then one syncfs per file system; a ca.crt
//     that already holds the same root (mode and owner too) is left as it is, as renewals find it;
//   - the files a renewal replaces kept as hard links (made in parallel), then, inside one inventory
//     transaction that records every certificate, all the renames: the files on disk belong to the records
//     committed; a failed rename puts every replaced file back and records nothing;
//   - one more syncfs (or the caller's next one: `after`), then the replaced files removed in parallel (one
//     at a time, each unlink costs milliseconds on a file system mounted with `discard`).
import { link, lstat, readFile } from 'node:fs/promises';
import { renameSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Context } from '../context.js';
import { McpkiError, fix } from '../errors.js';
import { fsyncPath, removeStaleTemps, tempPathFor, tryUnlink } from '../fs/atomic.js';
import { runningUid, type SafeDirs } from '../fs/safe-path.js';
import { eachInParallel, removeAll, writeNewFileAsync } from '../fs/parallel.js';
import { syncFileSystems, type SyncBatch } from '../fs/sync-batch.js';
import { assertUsableDir, ensurePrivateDir } from '../home.js';
import { loadIssuingCa } from '../pki/ca.js';
import { assertPermitted } from '../pki/constraints.js';
import { toPem } from '../pki/der.js';
import { DEFAULT_DAYS, fingerprintOf, MAX_DAYS, signLeaf, type IssueRequest } from '../pki/issue.js';
import { generateEncodedKeyAsync, parseKeyType, DEFAULT_KEY_TYPE } from '../pki/keys.js';
import { classifySans, validateCertName } from '../pki/names.js';
import type { CertificateRecord, NewCertificate } from '../store/store.js';

const OUT_DIR_HINT = fix('choose a writable folder with {--out DIR} (or leave it out to use HOME/certs/NAME)');

interface FileToWrite {
  path: string;
  data: string;
  mode: number;
  temp: string;
  /** the replaced file, kept as a hard link until the run is final */
  previous: string | null;
  /** ca.crt: left as it is when it already holds exactly this (the same CA's root, mode and owner) */
  keepIfSame?: boolean;
  /** left in place: not written, linked or renamed */
  kept?: boolean;
}

/**
 * Whether `path` is already a regular file of this user's with exactly this mode and content (the folder is
 * the home's, 0700: no one else can change it meanwhile). Any doubt (missing, unreadable, a symlink): false.
 */
async function holds(path: string, data: string, mode: number): Promise<boolean> {
  try {
    const stat = await lstat(path);
    if (!stat.isFile() || stat.uid !== runningUid() || (stat.mode & 0o7777) !== mode) return false;
    if (stat.size !== Buffer.byteLength(data)) return false;
    return (await readFile(path, 'utf8')) === data;
  } catch {
    return false;
  }
}

/**
 * Issues every request (server or client certificates into HOME/certs/NAME, no PKCS#12) or none: any request
 * that fails validation, or any write that fails, throws before anything is recorded and with every previous
 * file in place.
 */
export async function issueLocalBatch(
  context: Context,
  requests: readonly IssueRequest[],
  after?: { sync: SyncBatch; remove: string[] },
): Promise<CertificateRecord[]> {
  const ca = loadIssuingCa(context);
  // every folder on the way to HOME/certs is walked once for the whole chunk, then each NAME below it
  const safeDirs: SafeDirs = new Map();
  const plans = requests.map((request) => {
    if (request.kind !== 'server' && request.kind !== 'client')
      throw new McpkiError(
        'INVALID_INPUT',
        `unknown certificate kind "${String(request.kind)}"`,
        'use server or client',
      );
    const name = validateCertName(request.name);
    const sans = classifySans([...(request.sans ?? [])]);
    if (request.kind === 'server' && sans.length === 0)
      throw new McpkiError(
        'INVALID_NAME',
        `server certificate "${name}" has no names`,
        'list the names clients connect to',
      );
    const keyType = parseKeyType(request.keyType ?? DEFAULT_KEY_TYPE);
    const days = request.days ?? DEFAULT_DAYS;
    if (!Number.isInteger(days) || days < 1 || days > MAX_DAYS)
      throw new McpkiError(
        'INVALID_DAYS',
        `days must be a whole number from 1 to ${MAX_DAYS}, got ${days}`,
        `give days from 1 to ${MAX_DAYS}`,
      );
    assertPermitted(sans, ca.permitted);
    const outDir = join(context.layout.certsDir, name);
    assertUsableDir(outDir, OUT_DIR_HINT, `a folder on the way to ${outDir}`, safeDirs);
    const paths = {
      cert: join(outDir, `${name}.crt`),
      key: join(outDir, `${name}.key`),
      fullchain: join(outDir, `${name}.fullchain.pem`),
      ca: join(outDir, 'ca.crt'),
    };
    return { kind: request.kind, name, sans, keyType, days, outDir, paths };
  });
  const store = context.store(); // a broken inventory fails here, before anything is written
  const now = context.now();
  const keys = await Promise.all(plans.map((plan) => generateEncodedKeyAsync(plan.keyType)));
  const records: NewCertificate[] = [];
  const files: FileToWrite[] = [];
  plans.forEach((plan, i) => {
    const signed = signLeaf(ca, plan, keys[i]!, now);
    const certPem = toPem('CERTIFICATE', signed.der);
    records.push({
      name: plan.name,
      kind: plan.kind,
      serial: signed.serial.toString('hex').toUpperCase(),
      subject: signed.subject.map((a) => `${a.type}=${a.value}`).join(', '),
      sans: plan.sans,
      issuer: 'local',
      issuerSerial: ca.cert.serialNumber.toUpperCase(),
      profile: null,
      keyType: plan.keyType,
      notBefore: signed.notBefore.toISOString(),
      notAfter: signed.notAfter.toISOString(),
      fingerprint: fingerprintOf(signed.der),
      pem: certPem,
      paths: plan.paths,
    });
    const file = (path: string, data: string, mode: number, keepIfSame = false): FileToWrite => ({
      path,
      data,
      mode,
      temp: tempPathFor(path),
      previous: null,
      keepIfSame,
    });
    files.push(
      file(plan.paths.key, keys[i]!.privatePem, 0o600),
      file(plan.paths.cert, certPem, 0o644),
      file(plan.paths.fullchain, certPem + ca.pem, 0o644),
      // the same root at every renewal: rewriting it would only cost a create, link, rename and unlink each
      file(plan.paths.ca, ca.rootPem, 0o644, true),
    );
  });

  const created: string[] = [];
  const written: FileToWrite[] = [];
  /** the files renamed into place: all but those left as they were */
  let replaced: FileToWrite[] = files;
  const undo = async (): Promise<void> => {
    await removeAll([...written.map((f) => f.temp), ...files.flatMap((f) => (f.previous ? [f.previous] : []))]);
    for (const dir of created.reverse()) {
      try {
        rmdirSync(dir);
      } catch {
        // not empty: something else lives there now
      }
    }
  };
  try {
    for (const plan of plans) {
      created.push(...ensurePrivateDir(plan.outDir, OUT_DIR_HINT, safeDirs));
      // temp files of a killed process are removed (those of a live one, e.g. another home, are not)
      removeStaleTemps(plan.outDir);
    }
    await eachInParallel(files, async (f) => {
      if (f.keepIfSame && (await holds(f.path, f.data, f.mode))) {
        f.kept = true;
        return;
      }
      await writeNewFileAsync(f.temp, f.data, f.mode);
      written.push(f);
    });
    const dirs = plans.map((plan) => plan.outDir);
    // a file left in place is synced too (syncfs covers it), in case an earlier run was killed before its sync
    if (!(after ? after.sync.syncNow(dirs) : syncFileSystems(dirs)))
      for (const f of files) fsyncPath(f.kept ? f.path : f.temp);
    replaced = files.filter((f) => !f.kept);
    // the replaced files stay reachable until the renames are final: a failed rename puts them back
    await eachInParallel(replaced, async (f) => {
      const previous = tempPathFor(f.path);
      try {
        await link(f.path, previous);
        f.previous = previous;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    });
  } catch (error) {
    await undo();
    throw writeError(error);
  }
  let saved: CertificateRecord[];
  let renamed = 0;
  try {
    saved = store.transaction(() => {
      const out = records.map((record, i) => {
        const row = store.addCertificate(record);
        store.addEvent({
          type: 'certificate.issued',
          name: record.name,
          serial: record.serial,
          detail: {
            kind: plans[i]!.kind,
            sans: plans[i]!.sans.map((s) => s.value),
            keyType: plans[i]!.keyType,
            notAfter: record.notAfter,
            paths: plans[i]!.paths,
          },
        });
        return row;
      });
      for (; renamed < replaced.length; renamed++) renameSync(replaced[renamed]!.temp, replaced[renamed]!.path);
      return out;
    });
  } catch (error) {
    for (let i = renamed - 1; i >= 0; i--) {
      const f = replaced[i]!;
      try {
        if (f.previous) {
          renameSync(f.previous, f.path);
          f.previous = null;
        } else tryUnlink(f.path);
      } catch {
        // the error below names what failed
      }
    }
    written.splice(0, written.length, ...replaced.slice(renamed));
    await undo();
    throw writeError(error);
  }
  const previous = files.flatMap((f) => (f.previous ? [f.previous] : []));
  if (after) {
    // the caller's next flush makes the renames durable, and removes the replaced files after it
    for (const plan of plans) after.sync.dir(plan.outDir);
    after.remove.push(...previous);
    return saved;
  }
  if (!syncFileSystems(plans.map((plan) => plan.outDir)))
    for (const dir of new Set(plans.map((plan) => plan.outDir))) fsyncPath(dir);
  await removeAll(previous);
  return saved;
}

function writeError(error: unknown): McpkiError {
  if (error instanceof McpkiError) return error;
  const e = error as NodeJS.ErrnoException;
  return new McpkiError(
    'WRITE_FAILED',
    `cannot write ${e.path ?? 'the certificate files'} (${e.code ?? 'error'})`,
    'check that the folder is writable and the disk is not full; the previous files were left in place',
    { cause: error },
  );
}
