// Trust-store integration: install, remove or check the development root in the system store (Debian- or
// Fedora-style) and in NSS databases (Firefox, Chrome/Chromium). Each store lives in its own file behind the
// TrustStore interface, so macOS (security add-trusted-cert) and Windows (certutil -addstore) can join later.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Context } from '../context.js';
import { McpkiError, isMcpkiError, fix } from '../errors.js';
import {
  findTool,
  loadRoot,
  shellWord,
  type RootCertificate,
  type TrustStore,
  type TrustStoreResult,
} from './common.js';
import { detectDebian } from './debian.js';
import { detectFedora } from './fedora.js';
import { CERTUTIL_HINT, NssStore, checkNssDb, discoverNssDbs, nssDbProblem } from './nss.js';
import { anchorFileName } from './system.js';

export type { TrustStoreResult, TrustState, TrustStore, RootCertificate, Availability } from './common.js';
export { buildEnv, formatEnv, SHELL_KINDS, type EnvReport, type EnvVariable, type ShellKind } from './env.js';

export type TrustStoreName = 'system' | 'nss' | 'all';
export const TRUST_STORE_NAMES: readonly TrustStoreName[] = ['system', 'nss', 'all'];

export interface TrustOptions {
  /** default 'all' */
  store?: TrustStoreName;
  /** explicit NSS database folders (each holding cert9.db); default: the discovered ones */
  nssDbs?: string[];
  /**
   * How hints name this program, e.g. [process.execPath, '/usr/lib/node_modules/mcpki/bin/mcpki.js']: a full
   * path, since sudo does not search the user's PATH. Default ['mcpki'].
   */
  invocation?: readonly string[];
}

export interface TrustReport {
  root: { subject: string; fingerprint: string; path: string };
  stores: TrustStoreResult[];
  /**
   * install/uninstall only, when the system store was skipped because this user may not change it: the
   * command that does it as root (sudo, this program's full path, --store system, the same --home).
   */
  sudoCommand?: string;
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
    throw new McpkiError(
      'INVALID_INPUT',
      `unknown trust store "${String(which)}"`,
      `use one of: ${TRUST_STORE_NAMES.join(', ')}`,
    );
  }
  const plan: Plan = { stores: [], skipped: [] };

  if (which === 'system' || which === 'all') {
    const system = detectSystemStore(context.home);
    if (system && options.invocation?.length) system.invocation = options.invocation;
    const available = system?.isAvailable();
    if (system && available?.ok) plan.stores.push(system);
    else {
      const reason =
        system && available && !available.ok
          ? available.reason
          : 'no supported system trust store (neither update-ca-certificates nor update-ca-trust found)';
      const hint = fix(
        `mcpki supports Debian/Ubuntu and Fedora/RHEL system stores; elsewhere trust ${context.layout.rootCert} by hand, or use {--store nss}`,
      );
      if (which === 'system') throw new McpkiError('TRUST_TOOL_MISSING', reason, hint);
      plan.skipped.push({ store: 'system', location: system?.location ?? '-', state: 'skipped', detail: reason });
    }
  }

  if (which === 'nss' || which === 'all') {
    const explicit = (options.nssDbs ?? []).length > 0;
    const dbs = explicit ? options.nssDbs!.map(checkNssDb) : discoverNssDbs(homedir());
    const certutil = findTool('certutil');
    if (dbs.length === 0) {
      plan.skipped.push({
        store: 'nss',
        location: '-',
        state: 'skipped',
        detail: 'no NSS database found in ~/.pki/nssdb or Firefox profiles; pass --nss-db DIR',
      });
    } else if (!certutil) {
      if (explicit || which === 'nss')
        throw new McpkiError(
          'TRUST_TOOL_MISSING',
          'certutil not found: it is needed to change NSS databases (Firefox, Chrome)',
          CERTUTIL_HINT,
        );
      for (const dir of dbs)
        plan.skipped.push({
          store: 'nss',
          location: dir,
          state: 'skipped',
          detail: `certutil not found (${CERTUTIL_HINT})`,
        });
    } else {
      for (const dir of dbs) {
        // explicit folders were checked (and refused) by checkNssDb; a discovered one that is not safe is skipped
        const problem = explicit ? null : nssDbProblem(dir);
        if (problem) plan.skipped.push({ store: 'nss', location: dir, state: 'skipped', detail: problem });
        else plan.stores.push(new NssStore(dir, certutil));
      }
    }
  }
  return plan;
}

function runOperation(context: Context, operation: Operation, options: TrustOptions): TrustReport {
  const root = loadRoot(context, operation === 'uninstall');
  const plan = planStores(context, options);
  const lenient = (options.store ?? 'all') === 'all';
  const stores: TrustStoreResult[] = [];
  const systemRows: TrustStoreResult[] = [];
  const nssRows: TrustStoreResult[] = [];
  let sudoCommand: string | undefined;
  for (const store of plan.stores) {
    let result: TrustStoreResult;
    try {
      result = store[operation](root);
    } catch (error) {
      // with 'all', a store this user may not change is reported, not fatal: a normal user still gets NSS
      if (!lenient || !isMcpkiError(error) || error.code !== 'TRUST_PERMISSION') throw error;
      result = {
        store: store.name,
        location: store.location,
        state: 'skipped',
        detail: `${error.message}; ${error.hint ?? ''}`.replace(/; $/, ''),
      };
      if (operation !== 'status') sudoCommand ??= store.sudoCommand?.(operation);
    }
    if (result.state === 'installed' || result.state === 'removed') recordEvent(context, root, result);
    (result.store === 'nss' ? nssRows : systemRows).push(result);
  }
  for (const row of plan.skipped) (row.store === 'nss' ? nssRows : systemRows).push(row);
  stores.push(...systemRows, ...nssRows);
  return {
    root: { subject: root.subject, fingerprint: root.fingerprint, path: root.path },
    stores,
    ...(sudoCommand ? { sudoCommand } : {}),
  };
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

/**
 * Before `init --force` replaces the CA: takes the current root out of every trust store mcpki put it in
 * (the trust.installed events of this inventory, the system store's mcpki-<id>.crt anchor, and the NSS
 * databases found for this user), so a replaced root is never left trusted. Returns the stores it was removed
 * from. When a store cannot be changed by this user, nothing more is changed and TRUST_PERMISSION (or
 * TRUST_TOOL_MISSING) says to run `mcpki trust uninstall` first.
 */
export function removeRootFromTrustStores(context: Context): TrustStoreResult[] {
  let root: RootCertificate;
  try {
    root = loadRoot(context, true);
  } catch {
    return []; // no readable root: nothing that a trust store could hold under its fingerprint
  }
  const recorded = new Map<string, { store: string; location: string; installed: boolean }>();
  const store = context.existingStore();
  const events = store
    ? [
        ...store.listEvents({ type: 'trust.installed', limit: 10_000 }),
        ...store.listEvents({ type: 'trust.removed', limit: 10_000 }),
      ].sort((a, b) => a.id - b.id)
    : [];
  for (const event of events) {
    const detail = event.detail as { store?: unknown; location?: unknown; fingerprint?: unknown };
    if (
      detail.fingerprint !== root.fingerprint ||
      typeof detail.store !== 'string' ||
      typeof detail.location !== 'string'
    )
      continue;
    recorded.set(`${detail.store}\0${detail.location}`, {
      store: detail.store,
      location: detail.location,
      installed: event.type === 'trust.installed',
    });
  }
  const candidates: TrustStore[] = [];
  const hint = `run "mcpki trust uninstall --home ${shellWord(context.home)}" (with sudo for the system store) first, then "mcpki init --force" again`;
  const system = detectSystemStore(context.home);
  const systemRecorded = [...recorded.values()].some((r) => r.installed && r.store.startsWith('system'));
  if (system && (systemRecorded || existsSync(join(system.location, anchorFileName(root))))) candidates.push(system);
  else if (systemRecorded)
    throw new McpkiError(
      'TRUST_TOOL_MISSING',
      `the CA's root was installed in the system trust store, which cannot be changed here`,
      hint,
    );
  const certutil = findTool('certutil');
  const nssDirs = new Set<string>();
  for (const r of recorded.values()) if (r.installed && r.store === 'nss') nssDirs.add(r.location);
  if (nssDirs.size > 0 && !certutil)
    throw new McpkiError(
      'TRUST_TOOL_MISSING',
      `the CA's root was installed in NSS databases (${[...nssDirs].join(', ')}) and certutil is not available to remove it`,
      `${CERTUTIL_HINT}; or ${hint}`,
    );
  if (certutil) for (const dir of discoverNssDbs(homedir())) nssDirs.add(dir);
  for (const dir of nssDirs) if (existsSync(join(dir, 'cert9.db'))) candidates.push(new NssStore(dir, certutil));

  // first find where it is, so that a store this user cannot change stops us before any store is changed
  const present = candidates.filter((candidate) => {
    const state = candidate.status(root).state;
    return state === 'trusted' || state === 'untrusted';
  });
  const removed: TrustStoreResult[] = [];
  for (const candidate of present) {
    try {
      const result = candidate.uninstall(root);
      if (result.state === 'removed') {
        recordEvent(context, root, result);
        removed.push(result);
      }
    } catch (error) {
      if (!isMcpkiError(error)) throw error;
      throw new McpkiError(
        error.code === 'TRUST_FAILED' ? 'TRUST_FAILED' : 'TRUST_PERMISSION',
        `the CA's root ${root.subject} is trusted in ${candidate.location} and could not be removed (${error.message}); the CA was not replaced`,
        hint,
        { cause: error },
      );
    }
  }
  return removed;
}
