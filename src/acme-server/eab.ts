// External account binding keys (RFC 8555 §7.3.4) for the ACME server. The HMAC key is shown once when it is
// made and kept only sealed: AES-256-GCM under a key derived with HKDF-SHA256 from the issuing intermediate's
// private key (which every server instance has), with the kid as HKDF info and as additional data. The store
// therefore holds nothing secret (issue 12 can put it on PostgreSQL). A key sealed under an intermediate that
// was rotated since is opened with the archived key in ca/retired/.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Context } from '../context.js';
import { McpkiError, fix } from '../errors.js';
import { INPUT_LIMITS, readInputText } from '../fs/read.js';
import { loadIssuingCa } from '../pki/ca.js';
import { checkPermitted } from '../pki/constraints.js';
import { readPrivateKey } from '../pki/keys.js';
import { assertOneSpiffeId, classifySan, validateSpiffeId } from '../pki/names.js';
import type { EabKeyRow } from '../store/acme-server.js';
import type { EabKey } from './wfe.js';

export interface CreatedEabKey {
  kid: string;
  name: string;
  /** base64url of the 32-byte HMAC key: shown once, never stored in the clear */
  hmacKey: string;
  allow: string[];
  identities: string[];
}

export interface EabKeyView {
  kid: string;
  name: string;
  allow: string[];
  /** SPIFFE IDs and e-mail addresses its accounts may hold in clientAuth certificates */
  identities: string[];
  status: 'valid' | 'revoked';
  createdAt: string;
  revokedAt: string | null;
  /** accounts bound with it */
  accounts: number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const SALT = Buffer.from('mcpki acme-server eab v1');

function sealingKey(intermediateKey: KeyObject, kid: string): Buffer {
  const ikm = intermediateKey.export({ type: 'pkcs8', format: 'der' });
  return Buffer.from(hkdfSync('sha256', ikm, SALT, Buffer.from(`eab-hmac-key ${kid}`), 32));
}

export function sealEabKey(intermediateKey: KeyObject, kid: string, hmacKey: Buffer): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealingKey(intermediateKey, kid), iv);
  cipher.setAAD(Buffer.from(kid));
  const sealed = Buffer.concat([cipher.update(hmacKey), cipher.final()]);
  return Buffer.concat([iv, sealed, cipher.getAuthTag()]).toString('base64url');
}

export function openEabKey(intermediateKey: KeyObject, kid: string, sealed: string): Buffer {
  const bytes = Buffer.from(sealed, 'base64url');
  if (bytes.length < 12 + 16 + 1) throw new Error('sealed key too short');
  const decipher = createDecipheriv('aes-256-gcm', sealingKey(intermediateKey, kid), bytes.subarray(0, 12));
  decipher.setAAD(Buffer.from(kid));
  decipher.setAuthTag(bytes.subarray(bytes.length - 16));
  return Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()]);
}

/** An allow-list entry in the form wfe matches: "*.zone", an exact DNS name, or an IP address. */
function normalizeAllow(entry: string): string {
  if (/[\u0000-\u001f\u007f]/.test(entry))
    throw new McpkiError(
      'INVALID_INPUT',
      `the allow entry ${JSON.stringify(entry.slice(0, 100))} has a control character`,
      'give a name such as "*.agents.internal", "host.internal" or an IP address',
    );
  try {
    if (entry.startsWith('*.')) {
      const zone = classifySan(entry.slice(2));
      if (zone.type !== 'dns') throw new Error('a wildcard needs a DNS zone');
      return `*.${zone.value}`;
    }
    const san = classifySan(entry);
    if (san.type !== 'dns' && san.type !== 'ip') throw new Error(`a ${san.type} name is an identity: --allow-identity`);
    return san.value;
  } catch (error) {
    throw new McpkiError(
      'INVALID_INPUT',
      `the allow entry ${JSON.stringify(entry.slice(0, 100))} is not a DNS name, "*.zone" or an IP address (${(error as Error).message})`,
      'give a name such as "*.agents.internal", "host.internal" or 127.0.0.1',
    );
  }
}

/** An identity entry: a SPIFFE ID with a path (checked as `issue client --spiffe` checks it) or an e-mail address. */
function normalizeIdentity(entry: string): string {
  const hint = fix('give {--allow-identity} spiffe://trust.domain/agent or {--allow-identity} agent@example.test');
  if (/[\u0000-\u001f\u007f]/.test(entry))
    throw new McpkiError(
      'INVALID_INPUT',
      `the identity ${JSON.stringify(entry.slice(0, 100))} has a control character`,
      hint,
    );
  try {
    if (/^spiffe:/i.test(entry)) {
      const id = validateSpiffeId(entry);
      assertOneSpiffeId([{ type: 'uri', value: id }]);
      return id;
    }
    const san = classifySan(entry);
    if (san.type !== 'email' || /^[a-z][a-z0-9+.-]*:/i.test(entry)) throw new Error('not an e-mail address');
    return san.value;
  } catch (error) {
    throw new McpkiError(
      'INVALID_NAME',
      `the identity ${JSON.stringify(entry.slice(0, 100))} is not a SPIFFE ID or an e-mail address (${(error as Error).message})`,
      hint,
    );
  }
}

/** Stored together in the key's allow list: identities are told from names by their form ("spiffe://", "@"). */
function isIdentity(entry: string): boolean {
  return entry.startsWith('spiffe://') || entry.includes('@');
}

/** Makes an EAB key; its HMAC key is in the result and nowhere else in the clear. */
export function createEabKey(
  context: Context,
  options: { name: string; allow?: string[]; allowIdentity?: string[] },
): CreatedEabKey {
  if (!NAME.test(options.name)) {
    throw new McpkiError(
      'INVALID_NAME',
      `the EAB key name ${JSON.stringify(options.name.slice(0, 100))} is not 1-64 letters, digits, ".", "_" or "-"`,
      fix('give {--name} such as team-agents'),
    );
  }
  const allow = [...new Set((options.allow ?? []).map(normalizeAllow))];
  const identities = [...new Set((options.allowIdentity ?? []).map(normalizeIdentity))];
  const ca = loadIssuingCa(context);
  // outside the CA's name constraints nothing could ever be issued for it: said now, not at finalize
  for (const identity of identities) {
    const outside = checkPermitted(classifySan(identity), ca.permitted);
    if (outside !== null)
      throw new McpkiError(
        'NAME_NOT_PERMITTED',
        `the identity ${identity} is outside the CA's name constraints: ${outside}`,
        'allow an identity the CA may sign (mcpki ca show lists its constraints)',
      );
  }
  const kid = `eab-${randomBytes(12).toString('base64url')}`;
  const hmacKey = randomBytes(32);
  const store = context.store();
  store.transaction(() => {
    store.acmeServer().addEabKey({
      kid,
      name: options.name,
      sealedKey: sealEabKey(ca.key, kid, hmacKey),
      sealedBy: ca.cert.serialNumber.toUpperCase(),
      allow: [...allow, ...identities],
    });
    store.addEvent({ type: 'acme-server.eab.created', detail: { kid, name: options.name, allow, identities } });
  });
  return { kid, name: options.name, hmacKey: hmacKey.toString('base64url'), allow, identities };
}

export function listEabKeys(context: Context): EabKeyView[] {
  const tables = context.store().acmeServer();
  const accounts = tables.accountsPerEabKey();
  return tables.listEabKeys().map((row) => ({
    kid: row.kid,
    name: row.name,
    allow: row.allow.filter((e) => !isIdentity(e)),
    identities: row.allow.filter(isIdentity),
    status: row.status,
    createdAt: row.createdAt,
    revokedAt: row.revokedAt,
    accounts: accounts.get(row.kid) ?? 0,
  }));
}

/** Revokes a key: accounts bound with it can no longer order (new accounts cannot bind to it). */
export function revokeEabKey(context: Context, kid: string): EabKeyView {
  const store = context.store();
  const tables = store.acmeServer();
  const row = tables.getEabKey(kid);
  if (!row)
    throw new McpkiError(
      'NOT_FOUND',
      `no EAB key ${JSON.stringify(kid.slice(0, 100))}`,
      'see the kids with: mcpki acme-server eab list',
    );
  if (row.status === 'revoked')
    throw new McpkiError(
      'ALREADY_REVOKED',
      `the EAB key ${kid} (${row.name}) was already revoked at ${row.revokedAt}`,
      'nothing to do',
    );
  store.transaction(() => {
    tables.revokeEabKey(kid);
    store.addEvent({ type: 'acme-server.eab.revoked', detail: { kid, name: row.name } });
  });
  return listEabKeys(context).find((k) => k.kid === kid)!;
}

/**
 * The server's `findEabKey`: a valid key, opened, or undefined (unknown or revoked). Read from the inventory on
 * every call, so a revocation by another process counts at once.
 */
export function eabKeyLookup(context: Context): (kid: string) => EabKey | undefined {
  const keys = new Map<string, KeyObject>();
  const intermediateKey = (serial: string): KeyObject | undefined => {
    if (keys.has(serial)) return keys.get(serial);
    const ca = loadIssuingCa(context);
    let key: KeyObject | undefined;
    if (ca.cert.serialNumber.toUpperCase() === serial) key = ca.key;
    else {
      const path = join(context.layout.retiredDir, `intermediate-${serial}.key`);
      if (existsSync(path))
        key = readPrivateKey(readInputText(path, { what: 'the retired intermediate key', maxBytes: INPUT_LIMITS.pem }));
    }
    if (key) keys.set(serial, key);
    return key;
  };
  return (kid: string) => {
    if (!/^[A-Za-z0-9_-]{1,100}$/.test(kid)) return undefined;
    const row: EabKeyRow | undefined = context.store().acmeServer().getEabKey(kid);
    if (!row || row.status !== 'valid') return undefined;
    const key = intermediateKey(row.sealedBy);
    if (!key)
      throw new McpkiError(
        'CA_CORRUPT',
        `the EAB key ${kid} was sealed by intermediate ${row.sealedBy}, whose key is not in ${context.layout.retiredDir}`,
        'restore the retired intermediate key from a backup, or make a new EAB key',
      );
    let hmac: Buffer;
    try {
      hmac = openEabKey(key, kid, row.sealedKey);
    } catch {
      throw new McpkiError(
        'CA_CORRUPT',
        `the EAB key ${kid} does not open with the key of intermediate ${row.sealedBy}`,
        'the inventory or the CA key was replaced; make a new EAB key',
      );
    }
    return {
      kid,
      name: row.name,
      key: hmac,
      allow: row.allow.filter((e) => !isIdentity(e)),
      identities: row.allow.filter(isIdentity),
    };
  };
}
