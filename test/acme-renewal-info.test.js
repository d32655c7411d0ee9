// Renewal information (RFC 9773) stored for ACME certificates, against a small local HTTPS fixture that
// serves only a directory and renewalInfo documents (Pebble 2.4 has no ARI).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ariCertificateId, createContext, refreshRenewalInfo } from '../dist/index.js';
import { mcpki, tempDir, testStore } from './helpers.js';

async function fixture(home, { ari }) {
  const requests = [];
  const server = createServer(
    {
      key: readFileSync(join(home, 'certs', 'fixture', 'fixture.key')),
      cert: readFileSync(join(home, 'certs', 'fixture', 'fixture.fullchain.pem')),
    },
    (req, res) => {
      requests.push(req.url);
      const base = `https://127.0.0.1:${server.address().port}`;
      if (req.url === '/dir') {
        const directory = {
          newNonce: `${base}/nonce`,
          newAccount: `${base}/account`,
          newOrder: `${base}/order`,
          meta: { profiles: { classic: 'the old one' } },
        };
        if (ari) directory.renewalInfo = `${base}/renewal-info`;
        return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(directory));
      }
      if (ari && req.url.startsWith('/renewal-info/')) {
        return res.writeHead(200, { 'content-type': 'application/json', 'retry-after': '7200' }).end(
          JSON.stringify({
            suggestedWindow: { start: '2031-01-10T00:00:00Z', end: '2031-01-12T00:00:00Z' },
            explanationURL: 'https://ca.example/why',
          }),
        );
      }
      res.writeHead(404).end();
    },
  );
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, requests, url: `https://127.0.0.1:${server.address().port}/dir` };
}

/** A CA, the fixture server's certificate, and a leaf to record as if an ACME CA had issued it. */
function prepareHome(home) {
  assert.equal(mcpki(['--home', home, 'init']).status, 0);
  assert.equal(mcpki(['--home', home, 'issue', 'server', 'fixture', 'localhost', '127.0.0.1']).status, 0);
  const leaf = mcpki(['--home', home, '--json', 'issue', 'server', 'leaf', 'leaf.localhost']);
  assert.equal(leaf.status, 0, leaf.stderr);
  return leaf.json;
}

function seed(context, home, directoryUrl, issued) {
  const store = context.store();
  store.addAcmeAccount({
    name: 'fixture',
    directoryUrl,
    accountUrl: `${directoryUrl}/acct/1`,
    keyPath: join(home, 'unused.key'),
    environment: 'production',
    caBundle: join(home, 'ca', 'root.crt'),
  });
  const pem = readFileSync(issued.paths.cert, 'utf8');
  store.addCertificate({
    ...issued.certificate,
    name: 'site',
    issuer: 'acme:fixture',
    serial: 'AB' + issued.certificate.serial.slice(2),
    ariCertId: ariCertificateId(pem),
    environment: 'production',
  });
  return ariCertificateId(pem);
}

test('the window, Retry-After and explanation are fetched and stored', async () => {
  const { dir, cleanup } = tempDir();
  const home = join(dir, 'home');
  try {
    const issued = prepareHome(home);
    const { server, requests, url } = await fixture(home, { ari: true });
    const now = new Date('2031-01-01T00:00:00Z');
    const context = createContext({ ...testStore(home), home, now: () => now });
    try {
      const certId = seed(context, home, url, issued);
      const outcome = await refreshRenewalInfo(context, 'site');
      assert.deepEqual(outcome.renewalInfo, {
        windowStart: '2031-01-10T00:00:00.000Z',
        windowEnd: '2031-01-12T00:00:00.000Z',
        nextCheck: outcome.renewalInfo.nextCheck,
        explanationUrl: 'https://ca.example/why',
      });
      assert.ok(requests.includes(`/renewal-info/${certId}`), requests.join(' '));
      const nextCheck = Date.parse(outcome.renewalInfo.nextCheck);
      assert.ok(nextCheck - Date.now() > 7100_000 && nextCheck - Date.now() < 7300_000, 'ask again after Retry-After');
      const shown = mcpki(['--home', home, '--json', 'show', 'site']).json.certificate;
      assert.deepEqual(shown.renewalInfo, outcome.renewalInfo);
    } finally {
      context.close();
      server.close();
    }
  } finally {
    cleanup();
  }
});

test('a CA without renewalInfo is skipped cleanly', async () => {
  const { dir, cleanup } = tempDir();
  const home = join(dir, 'home');
  try {
    const issued = prepareHome(home);
    const { server, requests, url } = await fixture(home, { ari: false });
    const context = createContext({ ...testStore(home), home });
    try {
      seed(context, home, url, issued);
      const outcome = await refreshRenewalInfo(context, 'site');
      assert.equal(outcome.renewalInfo, null);
      assert.deepEqual(requests, ['/dir']);
    } finally {
      context.close();
      server.close();
    }
  } finally {
    cleanup();
  }
});
