// `mcpki check FILE` and `mcpki check NAME`: a certificate file (PEM leaf or fullchain, a combined
// cert+key file, or DER), optionally with its key, judged without a server.
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { childEnv } from '../process/env.js';
import type { Context } from '../context.js';
import { McpkiError, fix } from '../errors.js';
import { INPUT_LIMITS, readInputFile } from '../fs/read.js';
import {
  checkHostname,
  checkStrength,
  checkValidity,
  issueCommand,
  summarize,
  type CertificateSummary,
} from './certificate.js';
import { checkChain, readPemCertificates, type Anchors, type ChainReport } from './chain.js';
import type { Findings } from './findings.js';

export interface FileOptions {
  certPath: string;
  keyPath?: string;
  servername?: string;
  anchors: Anchors;
  /** the inventory certificate this file should hold (NAME targets) */
  inventoryName?: string;
}

export interface FileReport {
  certificate: CertificateSummary;
  chain: ChainReport;
  file: {
    cert: string;
    key: string | null;
    keyMatch: boolean | null;
    inventory: { name: string; serial: string; status: string } | null;
  };
}

/** A certificate or key file given to check: a regular file of at most 4 MiB (never a FIFO or a device). */
function readFile(path: string, what: string): Buffer {
  const missing = !existsSync(path);
  return readInputFile(path, {
    what,
    maxBytes: INPUT_LIMITS.pem,
    code: missing ? 'NOT_FOUND' : 'INVALID_INPUT',
    hint: missing ? 'check the path' : 'check that the file is readable',
  });
}

function readCertificates(path: string): { certificates: X509Certificate[]; text: string } {
  const bytes = readFile(path, 'certificate file');
  const text = bytes.toString('latin1');
  try {
    const certificates = text.includes('-----BEGIN') ? readPemCertificates(text) : [new X509Certificate(bytes)];
    if (certificates.length) return { certificates, text };
  } catch {
    // reported below
  }
  throw new McpkiError(
    'INVALID_INPUT',
    `${path} holds no certificate`,
    'give a PEM (-----BEGIN CERTIFICATE-----) or DER certificate file, e.g. NAME.crt or NAME.fullchain.pem',
  );
}

function readKey(findings: Findings, text: string, source: string): KeyObject | undefined {
  const block = /-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]+?-----END \1PRIVATE KEY-----/.exec(text);
  if (!block)
    throw new McpkiError(
      'INVALID_INPUT',
      `${source} holds no private key`,
      fix('give the PEM key file with {--key FILE}'),
    );
  if (block[1] === 'ENCRYPTED ' || /Proc-Type: 4,ENCRYPTED/.test(block[0])) {
    findings.add(
      'key-match',
      'info',
      `the key in ${source} is encrypted; it was not compared with the certificate`,
      null,
    );
    return undefined;
  }
  try {
    return createPrivateKey(block[0]);
  } catch (error) {
    throw new McpkiError(
      'INVALID_INPUT',
      `cannot read the private key in ${source}: ${(error as Error).message}`,
      'give a PEM private key (PKCS#8, PKCS#1 or SEC1)',
    );
  }
}

/** One entry of the passwd or group database (getent: files, LDAP, systemd-userdb alike), split on ":". */
function getent(database: 'passwd' | 'group', key: number): string[] | undefined {
  const result = spawnSync('getent', [database, String(key)], { encoding: 'utf8', env: childEnv(), timeout: 5_000 });
  return result.status === 0 ? result.stdout.split('\n')[0]!.split(':') : undefined;
}

/**
 * A key readable by its group is what mcpki.yaml's `mode: "0640"` with `group: www-data` makes on purpose: a
 * service group. Only read access for a group chosen for the file (not the owner's own primary group) is
 * taken as intended, and reported as info; group write, access for others, or the owner's own group
 * (where 0640 serves no purpose) stay warnings.
 */
function checkKeyPermissions(findings: Findings, path: string): void {
  const stat = statSync(path);
  const mode = stat.mode & 0o777;
  const modeText = mode.toString(8).padStart(4, '0');
  if (!(mode & 0o077)) return;
  if (!(mode & 0o037)) {
    const ownerGroup = getent('passwd', stat.uid)?.[3];
    const group = getent('group', stat.gid)?.[0] ?? String(stat.gid);
    if (ownerGroup !== undefined && ownerGroup !== String(stat.gid)) {
      findings.add(
        'key-permissions',
        'info',
        `${path} can be read by the group ${group} (mode ${modeText}), as for a service group: keep that group to the services that use the key`,
        null,
      );
      return;
    }
  }
  findings.add(
    'key-permissions',
    'warning',
    `${path} can be read by ${mode & 0o007 ? 'every user' : 'its group'} (mode ${modeText})`,
    `chmod 600 ${path} (or 640 with a group that only the service is in: chgrp GROUP ${path})`,
  );
}

export function checkFile(context: Context, findings: Findings, options: FileOptions): FileReport {
  const { certificates, text } = readCertificates(options.certPath);
  const leaf = certificates[0]!;
  const now = context.now();
  const issue = issueCommand(leaf);
  checkValidity(
    findings,
    leaf,
    now,
    options.inventoryName
      ? `renew it: mcpki renew --force ${options.inventoryName} (declared) or ${issue} ${options.inventoryName} … again`
      : `renew it (${issue} NAME … again), then reload the services that use it`,
  );
  if (options.servername) checkHostname(findings, leaf, options.servername);
  else if (leaf.subjectAltName)
    findings.add('names', 'info', `names: ${summarize(leaf, now).names.join(', ')} (check one with --servername NAME)`);
  const chain = checkChain(findings, certificates, options.anchors, {
    source: 'file',
    now,
    fix: { mcpkiFullchain: 'use NAME.fullchain.pem (leaf + intermediate)' },
  });
  checkStrength(findings, leaf, 'file');

  let keyMatch: boolean | null = null;
  const keySource = options.keyPath ?? (/PRIVATE KEY-----/.test(text) ? options.certPath : undefined);
  if (keySource) {
    const key = readKey(findings, readFile(keySource, 'key file').toString('latin1'), keySource);
    if (key) {
      keyMatch = leaf.checkPrivateKey(key);
      if (keyMatch) findings.add('key-match', 'ok', `the key in ${keySource} matches the certificate`);
      else
        findings.add(
          'key-match',
          'failure',
          `the key in ${keySource} does not belong to this certificate`,
          'pair the certificate with the key it was issued for (NAME.crt with NAME.key); a service fails to start or to handshake with a mismatched pair',
        );
    }
    checkKeyPermissions(findings, keySource);
  }
  const inventory = compareInventory(context, findings, leaf, options.inventoryName);
  return {
    certificate: summarize(leaf, now),
    chain,
    file: { cert: options.certPath, key: keySource ?? null, keyMatch, inventory },
  };
}

/** Which inventory record this file holds; for NAME targets, whether it is NAME's current certificate. */
function compareInventory(
  context: Context,
  findings: Findings,
  leaf: X509Certificate,
  expectedName: string | undefined,
): FileReport['file']['inventory'] {
  const fingerprint = leaf.fingerprint256.replace(/:/g, '');
  const records = context.existingStore()?.listCertificates({ all: true }) ?? [];
  const found = records.find((record) => record.fingerprint.replace(/:/g, '').toUpperCase() === fingerprint);
  if (found?.status === 'revoked') {
    findings.add(
      'inventory',
      'failure',
      `this is ${found.name}'s certificate serial ${found.serial}, revoked (${found.revocationReason ?? 'no reason'})`,
      `issue a new one: ${issueCommand(leaf)} ${found.name} …`,
    );
  } else if (expectedName) {
    const current = records.filter((record) => record.name === expectedName).reduce((a, b) => (b.id > a.id ? b : a));
    if (found?.id === current.id)
      findings.add('inventory', 'ok', `is ${expectedName}'s current certificate (serial ${current.serial})`);
    else
      findings.add(
        'inventory',
        'warning',
        `the file holds ${found ? `an older certificate of ${found.name} (serial ${found.serial})` : 'a certificate mcpki did not record'}, not ${expectedName}'s current one (serial ${current.serial})`,
        `rewrite the files: mcpki apply (declared certificates), or ${issueCommand(leaf)} ${expectedName} … again`,
      );
  } else if (found) {
    findings.add(
      'inventory',
      'info',
      `is mcpki's certificate ${found.name} (serial ${found.serial}${found.status === 'superseded' ? ', superseded by a newer one' : ''})`,
    );
  }
  return found ? { name: found.name, serial: found.serial, status: found.status } : null;
}
