// Trust-store integration: install, remove or check the development root in the system store (Debian- or
// Fedora-style) and in NSS databases (Firefox, Chrome/Chromium). Each store lives in its own file behind the
// TrustStore interface, so macOS (security add-trusted-cert) and Windows (certutil -addstore) can join later.
import { homedir } from 'node:os';
import type { Context } from '../context.js';
import { McpkiError, isMcpkiError } from '../errors.js';
import { findTool, loadRoot, type RootCertificate, type TrustStore, type TrustStoreResult } from './common.js';
import { detectDebian } from './debian.js';
import { detectFedora } from './fedora.js';
import { CERTUTIL_HINT, NssStore, checkNssDb, discoverNssDbs } from './nss.js';

export type { TrustStoreResult, TrustState, TrustStore, RootCertificate, Availability } from './common.js';
export { buildEnv, formatEnv, SHELL_KINDS, type EnvReport, type EnvVariable, type ShellKind } from './env.js';

export type TrustStoreName = 'system' | 'nss' | 'all';
export const TRUST_STORE_NAMES: readonly TrustStoreName[] = ['system', 'nss', 'all'];

export interface TrustOptions {
  /** default 'all' */
  store?: TrustStoreName;
  /** explicit NSS database folders (each holding cert9.db); default: the discovered ones */
  nssDbs?: string[];
}

export interface TrustReport {
  root: { subject: string; fingerprint: string; path: string };
  stores: TrustStoreResult[];
}

type Operation = 'install' | 'uninstall' | 'status';

/** The system store of this machine: Debian-style first, then Fedora-style; null when neither is present. */
export function detectSystemStore(home: string): TrustStore | null {
  return detectDebian(home) ?? detectFedora(home);
}

interface Plan {
  stores: TrustStore[];
  /** rows for stores that cannot be used here (only with store 'all') */
  skipped: TrustStoreResult[];
}

function planStores(context: Context, options: TrustOptions): Plan {
  const which = options.store ?? 'all';
  if (!TRUST_STORE_NAMES.includes(which)) {
    throw new McpkiError('INVALID_INPUT', `unknown trust store "${String(which)}"`, `use one of: ${TRUST_STORE_NAMES.join(', ')}`);
  }
  const plan: Plan = { stores: [], skipped: [] };

  if (which === 'system' || which === 'all') {
    const system = detectSystemStore(context.home);
    const available = system?.isAvailable();
    if (system && available?.ok) plan.stores.push(system);
    else {
      const reason = system && available && !available.ok ? available.reason : 'no supported system trust store (neither update-ca-certificates nor update-ca-trust found)';
      const hint = `mcpki supports Debian/Ubuntu and Fedora/RHEL system stores; elsewhere trust ${context.layout.rootCert} by hand, or use --store nss`;
      if (which === 'system') throw new McpkiError('TRUST_TOOL_MISSING', reason, hint);
      plan.skipped.push({ store: 'system', location: system?.location ?? '-', state: 'skipped', detail: reason });
    }
  }

  if (which === 'nss' || which === 'all') {
    const explicit = (options.nssDbs ?? []).length > 0;
    const dbs = explicit ? options.nssDbs!.map(checkNssDb) : discoverNssDbs(homedir());
    const certutil = findTool('certutil');
    if (dbs.length === 0) {
      plan.skipped.push({ store: 'nss', location: '-', state: 'skipped', detail: 'no NSS database found in ~/.pki/nssdb or Firefox profiles; pass --nss-db DIR' });
    } else if (!certutil) {
      if (explicit || which === 'nss') throw new McpkiError('TRUST_TOOL_MISSING', 'certutil not found: it is needed to change NSS databases (Firefox, Chrome)', CERTUTIL_HINT);
      for (const dir of dbs) plan.skipped.push({ store: 'nss', location: dir, state: 'skipped', detail: `certutil not found (${CERTUTIL_HINT})` });
    } else {
      for (const dir of dbs) plan.stores.push(new NssStore(dir, certutil));
    }
  }
  return plan;
}

function runOperation(context: Context, operation: Operation, options: TrustOptions): TrustReport {
  const root = loadRoot(context.layout.rootCert);
  const plan = planStores(context, options);
  const lenient = (options.store ?? 'all') === 'all';
  const stores: TrustStoreResult[] = [];
  const systemRows: TrustStoreResult[] = [];
  const nssRows: TrustStoreResult[] = [];
  for (const store of plan.stores) {
    let result: TrustStoreResult;
    try {
      result = store[operation](root);
    } catch (error) {
      // with 'all', a store this user may not change is reported, not fatal: a normal user still gets NSS
      if (!lenient || !isMcpkiError(error) || error.code !== 'TRUST_PERMISSION') throw error;
      result = { store: store.name, location: store.location, state: 'skipped', detail: `${error.message}; ${error.hint ?? ''}`.replace(/; $/, '') };
    }
    if (result.state === 'installed' || result.state === 'removed') recordEvent(context, root, result);
    (result.store === 'nss' ? nssRows : systemRows).push(result);
  }
  for (const row of plan.skipped) (row.store === 'nss' ? nssRows : systemRows).push(row);
  stores.push(...systemRows, ...nssRows);
  return { root: { subject: root.subject, fingerprint: root.fingerprint, path: root.path }, stores };
}

function recordEvent(context: Context, root: RootCertificate, result: TrustStoreResult): void {
  context.store().addEvent({
    type: result.state === 'installed' ? 'trust.installed' : 'trust.removed',
    detail: { store: result.store, location: result.location, fingerprint: root.fingerprint },
  });
}

/** Adds the root CA to the selected trust stores; stores that already trust it are left alone. */
export function installTrust(context: Context, options: TrustOptions = {}): TrustReport {
  return runOperation(context, 'install', options);
}

/** Removes the root CA (only the copy mcpki installed) from the selected trust stores. */
export function uninstallTrust(context: Context, options: TrustOptions = {}): TrustReport {
  return runOperation(context, 'uninstall', options);
}

/** Reports, per store, whether the root CA is trusted; changes nothing. */
export function trustStatus(context: Context, options: TrustOptions = {}): TrustReport {
  return runOperation(context, 'status', options);
}
