// `mcpki sign CSR_FILE`: a certificate for a key mcpki never sees, from a PKCS#10 request (RFC 2986). The
// request is hostile input: read with a size cap, its signature verified, its key held to the same rules as
// issuance, its names checked against the name constraints before anything is signed. Only the names are
// taken from it; every other subject attribute and requested extension is ignored (and reported), the
// certificate gets the server or client profile exactly as `issue` makes it.
import { lstatSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Context } from '../context.js';
import { writeFileAtomic } from '../fs/atomic.js';
import { McpkiError, fix } from '../errors.js';
import { INPUT_LIMITS, readInputFile } from '../fs/read.js';
import { assertSafeDir } from '../fs/safe-path.js';
import type { CertificateKind, CertificateRecord } from '../store/store.js';
import { loadIssuingCa } from './ca.js';
import { assertPermitted } from './constraints.js';
import { CSR_HINT, invalidCsr as invalid, parseCsr } from './csr.js';
import { fromPem, toPem } from './der.js';
import { fingerprintOf, signLeaf, DEFAULT_DAYS, MAX_DAYS } from './issue.js';
import { classifySan, validateCertName } from './names.js';

export interface SignRequest {
  /** the PKCS#10 request, PEM or DER */
  csrPath: string;
  /** server (serverAuth) or client (clientAuth); default server */
  profile?: CertificateKind | string;
  days?: number;
  /** write the certificate and the intermediate (a full chain) here; default: only returned */
  out?: string;
  /** the inventory name; default the request's CN, else its first DNS name */
  name?: string;
}

export interface SignedCertificate {
  certificate: CertificateRecord;
  /** the certificate followed by the intermediate, as servers take it */
  fullchain: string;
  /** where it was written, when --out was given */
  path: string | null;
  /** what the request asked for and the certificate does not carry */
  ignored: string[];
}

/** --out: a regular file (or nothing yet) in an existing folder that is safe to write in. */
function checkOut(out: string): string {
  const path = resolve(out);
  let stat;
  try {
    stat = lstatSync(path);
  } catch {
    stat = undefined;
  }
  if (stat && !stat.isFile())
    throw new McpkiError(
      'INVALID_INPUT',
      `--out ${out} is ${stat.isDirectory() ? 'a folder' : 'not a regular file'}`,
      'give the path of the certificate file to write (it is replaced)',
    );
  const dir = dirname(path);
  try {
    if (!statSync(dir).isDirectory()) throw new Error('ENOTDIR');
  } catch (error) {
    throw new McpkiError(
      'WRITE_FAILED',
      `cannot write --out ${out}: its folder ${dir} does not exist`,
      `create the folder first (mkdir -p ${dir}), or give another path`,
      { cause: error },
    );
  }
  assertSafeDir(dir, 'the --out folder');
  return path;
}

/** Signs the request with the intermediate, records the certificate and, with `out`, writes the full chain. */
export function signCsr(context: Context, request: SignRequest): SignedCertificate {
  const kind = request.profile ?? 'server';
  if (kind !== 'server' && kind !== 'client')
    throw new McpkiError(
      'INVALID_INPUT',
      `unknown profile "${kind}"`,
      fix('use {--profile} server or {--profile} client'),
    );
  const days = request.days ?? DEFAULT_DAYS;
  if (!Number.isInteger(days) || days < 1 || days > MAX_DAYS) {
    throw new McpkiError(
      'INVALID_DAYS',
      `--days must be a whole number from 1 to ${MAX_DAYS}, got ${String(request.days)}`,
      `give 1 to ${MAX_DAYS} days (default ${DEFAULT_DAYS})`,
    );
  }
  const ca = loadIssuingCa(context);
  const input = readInputFile(request.csrPath, {
    what: 'certificate request',
    maxBytes: INPUT_LIMITS.pem,
    hint: CSR_HINT,
  });
  const pem = input.toString('latin1');
  let der: Buffer = input;
  if (pem.includes('-----BEGIN')) {
    const blocks = [...fromPem(pem, 'CERTIFICATE REQUEST'), ...fromPem(pem, 'NEW CERTIFICATE REQUEST')];
    if (blocks.length !== 1)
      throw invalid(
        request.csrPath,
        blocks.length === 0 ? 'holds no "CERTIFICATE REQUEST" PEM block' : `holds ${blocks.length} requests`,
        CSR_HINT,
      );
    der = blocks[0]!;
  }
  const csr = parseCsr(der, request.csrPath);
  const cn = csr.subject.find((a) => a.type === 'CN')?.value;
  let sans = csr.sans;
  if (sans.length === 0 && cn !== undefined && kind === 'server') {
    // like `issue server localhost`: a request with only a CN that is a host name gets that name
    try {
      const san = classifySan(cn);
      if (san.type === 'dns' || san.type === 'ip') sans = [san];
    } catch {
      // not a host name: refused below
    }
  }
  if (kind === 'server' && sans.length === 0) {
    throw new McpkiError(
      'INVALID_NAME',
      `the certificate request ${request.csrPath} asks for no names`,
      'make the request with the names clients connect to, e.g. openssl req … -addext "subjectAltName=DNS:localhost,IP:127.0.0.1"',
    );
  }
  assertPermitted(sans, ca.permitted);
  const candidates = [request.name, cn, sans.find((s) => s.type === 'dns')?.value].filter(
    (n): n is string => n !== undefined,
  );
  const name =
    request.name !== undefined
      ? validateCertName(request.name)
      : candidates.find((n) => /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(n) && !n.includes('..'));
  if (!name)
    throw new McpkiError(
      'INVALID_NAME',
      `the certificate request ${request.csrPath} has no CN or DNS name usable as a certificate name`,
      fix('give one with {--name} NAME (letters, digits, ".", "_" and "-")'),
    );
  if (cn !== undefined && cn !== name) csr.ignored.push('subject CN');
  const path = request.out === undefined ? null : checkOut(request.out);

  const store = context.store();
  const signed = signLeaf(
    ca,
    { kind, name, sans, keyType: csr.keyType, days },
    { spki: csr.publicKey.export({ type: 'spki', format: 'der' }) },
    context.now(),
  );
  const certPem = toPem('CERTIFICATE', signed.der);
  const fullchain = certPem + ca.pem;
  const certificate = store.transaction(() => {
    const saved = store.addCertificate({
      name,
      kind,
      serial: signed.serial.toString('hex').toUpperCase(),
      subject: signed.subject.map((a) => `${a.type}=${a.value}`).join(', '),
      sans,
      issuer: 'local',
      issuerSerial: ca.cert.serialNumber.toUpperCase(),
      profile: null,
      keyType: csr.keyType,
      notBefore: signed.notBefore.toISOString(),
      notAfter: signed.notAfter.toISOString(),
      fingerprint: fingerprintOf(signed.der),
      pem: certPem,
      paths: path ? { fullchain: path } : {},
    });
    store.addEvent({
      type: 'certificate.signed',
      name,
      serial: saved.serial,
      detail: {
        csr: resolve(request.csrPath),
        kind,
        sans: sans.map((s) => s.value),
        keyType: csr.keyType,
        notAfter: saved.notAfter,
        ignored: csr.ignored,
        ...(path ? { path } : {}),
      },
    });
    if (path) writeFileAtomic(path, fullchain, 0o644);
    return saved;
  });
  return { certificate, fullchain, path, ignored: csr.ignored };
}
