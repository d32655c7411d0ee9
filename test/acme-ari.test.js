// ACME Renewal Information (RFC 9773), profiles (draft-aaron-acme-profiles) and typed ACME problems:
// the certificate identifier against the RFC's example and OpenSSL, the renewal-time choice, fetching over
// TLS from a local server with an mcpki certificate, and what acme-client 5.4.0 really throws.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createHttpServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import acme from 'acme-client';
import { mcpki, run, tempDir } from './helpers.js';
import {
  ariCertificateId,
  chooseRenewalTime,
  fetchDirectory,
  fetchRenewalInfo,
  isAriCertificateId,
  nextRenewalInfoCheck,
  parseRenewalInfo,
  RenewalInfoError,
  renewalInfoEndpoint,
  renewalInfoResourceUrl,
} from '../dist/acme/ari.js';
import { checkProfile, directoryProfiles, newOrderPayload } from '../dist/acme/profiles.js';
import { AcmeProblemError, describeProblem as describeProblemHint } from '../dist/acme/problem-text.js';
import { attachProblemRecorder, fromAcmeClientError, toAcmeProblemError } from '../dist/acme/client-errors.js';
import { errorCodeFor, isRetryable, problemFromDocument } from '../dist/acme/problems.js';
import { parseRetryAfter } from '../dist/acme/http.js';
import { McpkiError, renderFix } from '../dist/errors.js';

/** describeProblem with its hint in the command line's words (a hint that names options is a fix). */
function describeProblem(problem) {
  const described = describeProblemHint(problem);
  return { ...described, hint: typeof described.hint === 'string' ? described.hint : renderFix(described.hint, 'cli') };
}
import { bits, ctx, explicit, int, octets, oid, seq, time } from '../dist/pki/der.js';

// RFC 9773 Appendix A: the example certificate of section 4.1 (AKI keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:
// 7B:84:7B:A0:AE:2C:DE:01:C8:D4, serial 0x87654321, whose DER content octets are 00 87 65 43 21).
const RFC9773_EXAMPLE = `-----BEGIN CERTIFICATE-----
MIIBQzCB66ADAgECAgUAh2VDITAKBggqhkjOPQQDAjAVMRMwEQYDVQQDEwpFeGFt
cGxlIENBMCIYDzAwMDEwMTAxMDAwMDAwWhgPMDAwMTAxMDEwMDAwMDBaMBYxFDAS
BgNVBAMTC2V4YW1wbGUuY29tMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEeBZu
7cbpAYNXZLbbh8rNIzuOoqOOtmxA1v7cRm//AwyMwWxyHz4zfwmBhcSrf47NUAFf
qzLQ2PPQxdTXREYEnKMjMCEwHwYDVR0jBBgwFoAUaYhba4dGQEHhs3uEe6CuLN4B
yNQwCgYIKoZIzj0EAwIDRwAwRAIge09+S5TZAlw5tgtiVvuERV6cT4mfutXIlwTb
+FYN/8oCIClDsqBklhB9KAelFiYt9+6FDj3z4KGVelYM5MdsO3pK
-----END CERTIFICATE-----
`;
const RFC9773_ID = 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE';

/** A structurally valid certificate (unsigned) with the given serial and extensions, built with der.ts. */
function fakeCertificate(serial, extensions = []) {
  const ecdsaSha256 = seq(oid('1.2.840.10045.4.3.2'));
  const spki = seq(seq(oid('1.2.840.10045.2.1'), oid('1.2.840.10045.3.1.7')), bits(Buffer.alloc(65, 4)));
  const tbs = seq(
    explicit(0, int(2)),
    int(serial),
    ecdsaSha256,
    seq(),
    seq(time(new Date('2026-01-01T00:00:00Z')), time(new Date('2026-04-01T00:00:00Z'))),
    seq(),
    spki,
    ...(extensions.length ? [explicit(3, seq(...extensions))] : []),
  );
  return seq(tbs, ecdsaSha256, bits(Buffer.alloc(8)));
}
const akiExtension = (content) => seq(oid('2.5.29.35'), octets(seq(...content)));

function expectMcpkiError(fn, pattern) {
  assert.throws(fn, (error) => {
    assert.ok(error instanceof McpkiError, `expected McpkiError, got ${error}`);
    if (pattern) assert.match(error.message, pattern);
    assert.ok(error.hint, 'an McpkiError names the fix');
    return true;
  });
}

// ---------------------------------------------------------------------------------------------------
// Certificate identifier

test('ARI certificate identifier: the RFC 9773 section 4.1 example', () => {
  assert.equal(ariCertificateId(RFC9773_EXAMPLE), RFC9773_ID);
  // the same from DER, from a PEM Buffer, and from the AKI/serial bytes the RFC gives
  const der = Buffer.from(RFC9773_EXAMPLE.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  assert.equal(ariCertificateId(der), RFC9773_ID);
  assert.equal(ariCertificateId(Buffer.from(RFC9773_EXAMPLE)), RFC9773_ID);
  const keyId = Buffer.from('69885B6B874640 41E1B37B847BA0AE2CDE01C8D4'.replace(/\s/g, ''), 'hex');
  const rebuilt = fakeCertificate(Buffer.from('87654321', 'hex'), [akiExtension([ctx(0, keyId, false)])]);
  assert.equal(ariCertificateId(rebuilt), RFC9773_ID, 'serial 0x87654321 is encoded with its leading 0x00');
  assert.ok(isAriCertificateId(RFC9773_ID));
  for (const bad of [
    'aYhba4dGQEHhs3uEe6CuLN4ByNQ',
    'a.b.c',
    '.AIdlQyE',
    'aYhba4dGQEHhs3uEe6CuLN4ByNQ=.AIdlQyE=',
    'a/b.c',
  ])
    assert.equal(isAriCertificateId(bad), false, bad);
  assert.equal(
    renewalInfoResourceUrl('https://ca.test/renewal-info/', RFC9773_ID),
    `https://ca.test/renewal-info/${RFC9773_ID}`,
  );
});

test('ARI certificate identifier: small serials have no leading zero; AKI with issuer+serial only is refused', () => {
  const keyId = Buffer.from('0102030405', 'hex');
  assert.equal(ariCertificateId(fakeCertificate(1, [akiExtension([ctx(0, keyId, false)])])), 'AQIDBAU.AQ');
  expectMcpkiError(() => ariCertificateId(fakeCertificate(5)), /no Authority Key Identifier/);
  // AuthorityKeyIdentifier with authorityCertSerialNumber [2] but no keyIdentifier [0]
  expectMcpkiError(
    () => ariCertificateId(fakeCertificate(5, [akiExtension([ctx(2, Buffer.from([7]), false)])])),
    /no keyIdentifier/,
  );
  expectMcpkiError(() => ariCertificateId('no certificate here'), /no PEM CERTIFICATE/);
  assert.equal(
    ariCertificateId(
      Buffer.from(
        `Bag Attributes\n    friendlyName: example certificate with a long header line before the PEM\n${RFC9773_EXAMPLE}`,
      ),
    ),
    RFC9773_ID,
  );
  expectMcpkiError(() => ariCertificateId(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01])), /not an X.509 certificate/);
});

// ---------------------------------------------------------------------------------------------------
// Choosing when to renew, and when to ask again

test('chooseRenewalTime: uniform inside the window, bounds with an injected random, past windows mean now', () => {
  const start = new Date('2030-03-01T00:00:00Z');
  const end = new Date('2030-03-03T00:00:00Z');
  const now = new Date('2030-02-01T00:00:00Z');
  const span = end - start;
  let low = Infinity;
  let high = -Infinity;
  let sum = 0;
  const draws = 20_000;
  for (let i = 0; i < draws; i++) {
    const t = chooseRenewalTime({ start, end }, now).getTime();
    assert.ok(t >= start.getTime() && t <= end.getTime(), `draw ${new Date(t).toISOString()} outside the window`);
    low = Math.min(low, t);
    high = Math.max(high, t);
    sum += t;
  }
  assert.ok(low - start < span * 0.01 && end - high < span * 0.01, 'draws cover the whole window');
  assert.ok(
    Math.abs(sum / draws - (start.getTime() + span / 2)) < span * 0.02,
    'draws centre on the middle of the window',
  );
  assert.equal(chooseRenewalTime({ start, end }, now, () => 0).toISOString(), start.toISOString());
  assert.equal(chooseRenewalTime({ start, end }, now, () => 1).toISOString(), end.toISOString());
  assert.equal(chooseRenewalTime({ start, end }, now, () => 0.5).toISOString(), '2030-03-02T00:00:00.000Z');

  // inside the window: uniform in [now, end]
  const inside = new Date('2030-03-02T12:00:00Z');
  assert.equal(chooseRenewalTime({ start, end }, inside, () => 0).toISOString(), inside.toISOString());
  assert.equal(chooseRenewalTime({ start, end }, inside, () => 1).toISOString(), end.toISOString());
  for (let i = 0; i < 1000; i++) {
    const t = chooseRenewalTime({ start, end }, inside).getTime();
    assert.ok(t >= inside.getTime() && t <= end.getTime());
  }
  // the window is over: renew now
  const later = new Date('2030-04-01T00:00:00Z');
  assert.equal(chooseRenewalTime({ start, end }, later, () => 0.3).toISOString(), later.toISOString());
  assert.equal(chooseRenewalTime({ start, end }, end, () => 0.3).toISOString(), end.toISOString());
  expectMcpkiError(() => chooseRenewalTime({ start: end, end: start }, now), /end after it starts/);
});

test('nextRenewalInfoCheck: Retry-After clamped to [1 minute, 1 day], 6 hours without one', () => {
  const at = new Date('2030-01-01T00:00:00Z');
  const plus = (seconds) => new Date(at.getTime() + seconds * 1000).toISOString();
  assert.equal(nextRenewalInfoCheck(at, 21_600).toISOString(), plus(21_600));
  assert.equal(nextRenewalInfoCheck(at, 3_600).toISOString(), plus(3_600));
  assert.equal(nextRenewalInfoCheck(at, undefined).toISOString(), plus(6 * 3600));
  assert.equal(nextRenewalInfoCheck(at, 0).toISOString(), plus(60));
  assert.equal(nextRenewalInfoCheck(at, 10 * 86_400).toISOString(), plus(86_400));
  assert.equal(nextRenewalInfoCheck(at, 5, { minSeconds: 3600, maxSeconds: 7200 }).toISOString(), plus(3600));
  assert.equal(nextRenewalInfoCheck(at, undefined, { defaultSeconds: 60 }).toISOString(), plus(60));
});

test('parseRetryAfter: delay-seconds and HTTP-date', () => {
  const now = new Date('2030-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('120', now), 120);
  assert.equal(parseRetryAfter(' 0 ', now), 0);
  assert.equal(parseRetryAfter('Tue, 01 Jan 2030 02:00:00 GMT', now), 7200);
  assert.equal(parseRetryAfter('Mon, 31 Dec 2029 23:00:00 GMT', now), 0, 'a date in the past means now');
  for (const bad of [undefined, '', 'soon', '-5', '1.5', '2030-01-01'])
    assert.equal(parseRetryAfter(bad, now), undefined, String(bad));
});

test('parseRenewalInfo: RFC 3339 start/end, end strictly after start', () => {
  const ok = parseRenewalInfo({
    suggestedWindow: { start: '2030-01-02T04:00:00Z', end: '2030-01-03T04:00:00.5+01:00' },
    explanationURL: 'https://ca.test/why',
  });
  assert.equal(ok.window.start.toISOString(), '2030-01-02T04:00:00.000Z');
  assert.equal(ok.window.end.toISOString(), '2030-01-03T03:00:00.500Z');
  assert.equal(ok.explanationUrl, 'https://ca.test/why');
  for (const [json, why] of [
    [null, /not a JSON object/],
    [{}, /no suggestedWindow/],
    [{ suggestedWindow: { start: 'tomorrow', end: '2030-01-03T04:00:00Z' } }, /start is not an RFC 3339/],
    [{ suggestedWindow: { start: '2030-01-02T04:00:00Z', end: 1893556800 } }, /end is not an RFC 3339/],
    [{ suggestedWindow: { start: '2030-01-02T04:00:00Z', end: '2030-01-02T04:00:00Z' } }, /is not after its start/],
  ]) {
    assert.throws(
      () => parseRenewalInfo(json),
      (error) => error instanceof RenewalInfoError && error.reason === 'malformed' && why.test(error.message),
    );
  }
});

// ---------------------------------------------------------------------------------------------------
// A local ACME-ish HTTPS server (certificate from mcpki) serving directories and renewal information

describe('renewal information and profiles from a local HTTPS server', () => {
  const home = tempDir('mcpki-ari-');
  let server;
  let base;
  let rootPem;
  let leafPem;
  let leafId;
  const sockets = new Set();
  const routes = new Map();
  const start = '2030-05-01T00:00:00Z';
  const end = '2030-05-03T00:00:00Z';
  let httpDate;

  const json = (res, status, body, headers = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
  const directory = (withExtensions) => ({
    newNonce: `${base}/new-nonce`,
    newAccount: `${base}/new-account`,
    newOrder: `${base}/new-order`,
    revokeCert: `${base}/revoke-cert`,
    keyChange: `${base}/key-change`,
    ...(withExtensions ? { renewalInfo: `${base}/renewal-info` } : {}),
    meta: {
      termsOfService: `${base}/terms`,
      ...(withExtensions
        ? {
            profiles: {
              classic: 'The same profile you know and love',
              shortlived: 'https://ca.test/docs/profiles#shortlived',
              tlsserver: 'https://ca.test/docs/profiles#tlsserver',
            },
          }
        : {}),
    },
  });

  before(async () => {
    assert.equal(mcpki(['--home', home.dir, 'init']).status, 0);
    const out = join(home.dir, 'out');
    const issued = mcpki(['--home', home.dir, 'issue', 'server', 'ari', 'localhost', '127.0.0.1', '--out', out]);
    assert.equal(issued.status, 0, issued.stderr);
    rootPem = readFileSync(join(home.dir, 'ca', 'root.crt'), 'utf8');
    leafPem = readFileSync(join(out, 'ari.crt'), 'utf8');
    leafId = ariCertificateId(leafPem);

    routes.set('/directory', (req, res) => json(res, 200, directory(true)));
    routes.set('/directory-plain', (req, res) => json(res, 200, directory(false)));
    routes.set(`/renewal-info/${RFC9773_ID}`, (req, res) =>
      json(
        res,
        200,
        { suggestedWindow: { start, end }, explanationURL: 'https://ca.test/why' },
        { 'retry-after': '21600' },
      ),
    );
    routes.set(`/renewal-info/${leafId}`, (req, res) =>
      json(res, 200, { suggestedWindow: { start, end } }, { 'retry-after': httpDate }),
    );
    routes.set('/renewal-info/AAAA.AQ', (req, res) =>
      json(res, 200, { suggestedWindow: { start: end, end: start } }, { 'retry-after': '60' }),
    );
    routes.set('/renewal-info/AAAB.AQ', (req, res) => json(res, 200, { window: { start, end } }));
    routes.set('/renewal-info/AAAC.AQ', (req, res) => json(res, 200, '<html>not json</html>'));
    routes.set('/renewal-info/AAAD.AQ', (req, res) => json(res, 200, { suggestedWindow: { start: 'next week', end } }));
    routes.set('/renewal-info/AAAE.AQ', (req, res) =>
      json(
        res,
        503,
        { type: 'urn:ietf:params:acme:error:serverInternal', detail: 'try later', status: 503 },
        { 'retry-after': '120' },
      ),
    );
    routes.set('/renewal-info/AAAF.AQ', () => {
      // never answers: the client's timeout has to end it
    });

    server = createHttpsServer(
      { cert: readFileSync(join(out, 'ari.fullchain.pem')), key: readFileSync(join(out, 'ari.key')) },
      (req, res) => {
        const handler = routes.get(req.url);
        if (handler) return handler(req, res);
        json(
          res,
          404,
          { type: 'urn:ietf:params:acme:error:malformed', detail: 'Certificate not found', status: 404 },
          { 'content-type': 'application/problem+json' },
        );
      },
    );
    server.on('connection', (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `https://localhost:${server.address().port}`;
  });

  after(async () => {
    for (const socket of sockets) socket.destroy();
    if (server) await new Promise((resolve) => server.close(resolve));
    home.cleanup();
  });

  test('the identifier of an mcpki-issued certificate matches openssl x509 -text', () => {
    const leafPath = join(home.dir, 'out', 'ari.crt');
    const text = run('openssl', ['x509', '-in', leafPath, '-noout', '-text']);
    assert.equal(text.status, 0, text.stderr);
    const aki = /X509v3 Authority Key Identifier:\s*\n\s*(?:keyid:)?([0-9A-Fa-f:]+)/.exec(text.stdout);
    assert.ok(aki, text.stdout);
    const serialBlock = /Serial Number:\s*\n?\s*([0-9a-fA-F:]+)/.exec(text.stdout);
    assert.ok(serialBlock, text.stdout);
    const keyId = Buffer.from(aki[1].replace(/:/g, ''), 'hex');
    let serial = Buffer.from(serialBlock[1].replace(/:/g, '').padStart(2, '0'), 'hex');
    // DER INTEGER content octets: a positive serial whose high bit is set gets a leading 0x00
    if (serial[0] & 0x80) serial = Buffer.concat([Buffer.from([0]), serial]);
    assert.equal(keyId.length, 20);
    assert.equal(leafId, `${keyId.toString('base64url')}.${serial.toString('base64url')}`);
    // openssl x509 -serial agrees with the -text serial
    const serialLine = run('openssl', ['x509', '-in', leafPath, '-noout', '-serial']).stdout.trim();
    assert.equal(
      serialLine.replace('serial=', '').toLowerCase().replace(/^0+/, ''),
      serialBlock[1].replace(/:/g, '').toLowerCase().replace(/^0+/, ''),
    );
    // a full chain gives the leaf's identifier
    const fullchain = readFileSync(join(home.dir, 'out', 'ari.fullchain.pem'), 'utf8');
    assert.equal(ariCertificateId(fullchain), leafId);
  });

  test('fetchDirectory + fetchRenewalInfo over TLS: window, explanationURL, Retry-After in seconds', async () => {
    const dir = await fetchDirectory(`${base}/directory`, { ca: rootPem });
    const endpoint = renewalInfoEndpoint(dir);
    assert.equal(endpoint, `${base}/renewal-info`);
    const info = await fetchRenewalInfo(endpoint, RFC9773_ID, { ca: rootPem });
    assert.equal(info.window.start.toISOString(), '2030-05-01T00:00:00.000Z');
    assert.equal(info.window.end.toISOString(), '2030-05-03T00:00:00.000Z');
    assert.equal(info.explanationUrl, 'https://ca.test/why');
    assert.equal(info.retryAfterSeconds, 21_600);
    assert.ok(Math.abs(info.fetchedAt - Date.now()) < 10_000);
    assert.equal(
      nextRenewalInfoCheck(info.fetchedAt, info.retryAfterSeconds).getTime(),
      info.fetchedAt.getTime() + 21_600_000,
    );
    const when = chooseRenewalTime(info.window, new Date('2030-04-01T00:00:00Z'));
    assert.ok(when >= info.window.start && when <= info.window.end);
  });

  test('fetchRenewalInfo: Retry-After as an HTTP-date, for the mcpki certificate', async () => {
    httpDate = new Date(Date.now() + 2 * 3600 * 1000).toUTCString();
    const info = await fetchRenewalInfo(`${base}/renewal-info/`, leafId, { ca: Buffer.from(rootPem) });
    assert.equal(info.explanationUrl, undefined);
    assert.ok(info.retryAfterSeconds >= 7190 && info.retryAfterSeconds <= 7200, String(info.retryAfterSeconds));
  });

  test('fetchRenewalInfo rejects malformed windows and reports HTTP, timeout and TLS failures', async () => {
    const endpoint = `${base}/renewal-info`;
    const expectFailure = async (id, check, options = { ca: rootPem }) => {
      await assert.rejects(fetchRenewalInfo(endpoint, id, options), (error) => {
        assert.ok(error instanceof RenewalInfoError, String(error));
        assert.ok(error instanceof McpkiError);
        assert.ok(error.hint);
        check(error);
        return true;
      });
    };
    await expectFailure('AAAA.AQ', (e) => {
      assert.equal(e.reason, 'malformed');
      assert.match(e.message, /is not after its start/);
      assert.equal(e.temporary, false);
    });
    await expectFailure('AAAB.AQ', (e) => assert.match(e.message, /no suggestedWindow/));
    await expectFailure('AAAC.AQ', (e) => assert.match(e.message, /not JSON/));
    await expectFailure('AAAD.AQ', (e) => assert.match(e.message, /start is not an RFC 3339 timestamp/));
    await expectFailure('AAAE.AQ', (e) => {
      assert.equal(e.reason, 'http');
      assert.equal(e.status, 503);
      assert.equal(e.temporary, true);
      assert.equal(e.retryAfterSeconds, 120);
      assert.match(e.message, /HTTP 503: try later/);
    });
    await expectFailure('AAAZ.AQ', (e) => {
      assert.equal(e.status, 404);
      assert.equal(e.temporary, false);
      assert.match(e.message, /no renewal information for certificate AAAZ\.AQ: Certificate not found/);
    });
    await expectFailure(
      'AAAF.AQ',
      (e) => {
        assert.equal(e.reason, 'timeout');
        assert.equal(e.temporary, true);
      },
      { ca: rootPem, timeoutMs: 300 },
    );
    await expectFailure(
      RFC9773_ID,
      (e) => {
        assert.equal(e.reason, 'tls');
        assert.equal(e.code, 'NETWORK');
        assert.match(e.hint, /--ca-bundle/);
      },
      {},
    );
    await assert.rejects(fetchRenewalInfo(endpoint, 'not an id', { ca: rootPem }), /not an ARI certificate identifier/);
  });

  test('profiles: checkProfile against the directory, and a directory without profiles or ARI', async () => {
    const dir = await fetchDirectory(`${base}/directory`, { ca: rootPem });
    assert.deepEqual(Object.keys(directoryProfiles(dir)), ['classic', 'shortlived', 'tlsserver']);
    assert.equal(checkProfile(undefined, dir), undefined);
    assert.equal(checkProfile('shortlived', dir), 'shortlived');
    assert.throws(
      () => checkProfile('bogus', dir),
      (error) => {
        assert.ok(error instanceof McpkiError);
        assert.match(error.message, /unknown ACME profile "bogus"; this server offers: classic, shortlived, tlsserver/);
        assert.match(error.hint, /--profile/);
        return true;
      },
    );
    assert.throws(
      () => checkProfile('ShortLived', dir),
      (error) => /did you mean --profile shortlived/.test(error.hint),
    );

    const plain = await fetchDirectory(`${base}/directory-plain`, { ca: rootPem });
    assert.equal(renewalInfoEndpoint(plain), undefined, 'no ARI: callers skip renewal information and "replaces"');
    assert.deepEqual(directoryProfiles(plain), {});
    assert.equal(checkProfile(undefined, plain), undefined, 'no --profile: fine without profiles');
    assert.throws(
      () => checkProfile('shortlived', plain),
      (error) => {
        assert.ok(error instanceof McpkiError);
        assert.match(error.message, /this ACME server does not support profiles/);
        assert.match(error.hint, /drop --profile/);
        return true;
      },
    );
  });

  test('acme-client against an untrusted TLS server: the recorder restores the TLS error acme-client loses', async () => {
    const recorder = attachProblemRecorder(acme.axios);
    const saved = { ...acme.axios.defaults.acmeSettings };
    acme.axios.defaults.acmeSettings.retryMaxAttempts = 0;
    try {
      const client = new acme.Client({
        directoryUrl: `${base}/directory`,
        accountKey: await acme.crypto.createPrivateEcdsaKey(),
      });
      const error = await client.createAccount({ termsOfServiceAgreed: true }).then(
        () => undefined,
        (e) => e,
      );
      assert.ok(error instanceof TypeError, 'acme-client 5.4.0 turns network errors into a TypeError');
      assert.match(error.message, /reading 'config'/);
      const problem = fromAcmeClientError(error, { recorder, operation: 'account' });
      assert.equal(problem.name, 'untrustedServer');
      assert.equal(problem.origin, 'network');
      assert.match(problem.networkCode, /SELF_SIGNED|UNABLE_TO|CERT/);
      const { message, hint } = describeProblem(problem);
      assert.match(message, /presented a TLS certificate this machine does not trust/);
      assert.match(hint, /--ca-bundle/);
      assert.equal(errorCodeFor(problem), 'NETWORK');
    } finally {
      Object.assign(acme.axios.defaults.acmeSettings, saved);
      recorder.detach();
    }
  });
});

test('newOrderPayload: profile and replaces only when set', () => {
  const bare = newOrderPayload({ identifiers: ['example.com', '127.0.0.1', { type: 'dns', value: '*.example.com' }] });
  assert.deepEqual(bare, {
    identifiers: [
      { type: 'dns', value: 'example.com' },
      { type: 'ip', value: '127.0.0.1' },
      { type: 'dns', value: '*.example.com' },
    ],
  });
  assert.equal(
    JSON.stringify(newOrderPayload({ identifiers: ['a.example'], profile: undefined, replaces: undefined })),
    '{"identifiers":[{"type":"dns","value":"a.example"}]}',
  );
  const full = newOrderPayload({
    identifiers: [{ type: 'dns', value: 'a.example' }],
    profile: 'shortlived',
    replaces: RFC9773_ID,
  });
  assert.deepEqual(full, {
    identifiers: [{ type: 'dns', value: 'a.example' }],
    profile: 'shortlived',
    replaces: RFC9773_ID,
  });
  assert.deepEqual(newOrderPayload({ identifiers: ['[::1]'] }).identifiers, [{ type: 'ip', value: '::1' }]);
  expectMcpkiError(
    () => newOrderPayload({ identifiers: ['a.example'], replaces: 'not-an-id' }),
    /ARI certificate identifier/,
  );
  expectMcpkiError(() => newOrderPayload({ identifiers: [] }), /at least one identifier/);
});

// ---------------------------------------------------------------------------------------------------
// Problems: what acme-client 5.4.0 throws, from a fake ACME server (plain HTTP: acme-client does not care)

describe('ACME problems from acme-client 5.4.0', () => {
  let server;
  let base;
  let mode = 'ok';
  let accountKey;
  const saved = { ...acme.axios.defaults.acmeSettings };
  const problem = (name, detail, extra = {}) => ({
    type: `urn:ietf:params:acme:error:${name}`,
    detail,
    status: 400,
    ...extra,
  });
  const challenge = (withDetail) => ({
    type: 'http-01',
    url: `${base}/chall/1`,
    token: 'tok',
    status: 'invalid',
    error: {
      type: 'urn:ietf:params:acme:error:connection',
      ...(withDetail
        ? { detail: '127.0.0.1: Fetching http://a.example/.well-known/acme-challenge/tok: Connection refused' }
        : {}),
      status: 400,
    },
  });

  before(async () => {
    acme.axios.defaults.acmeSettings.retryMaxAttempts = 0; // no 5 s back-off on 429/5xx in tests
    accountKey = await acme.crypto.createPrivateEcdsaKey();
    server = createHttpServer((req, res) => {
      const send = (status, body, headers = {}) => {
        res.writeHead(status, {
          'replay-nonce': `nonce-${Math.random().toString(36).slice(2)}`,
          'content-type': body && body.type ? 'application/problem+json' : 'application/json',
          ...headers,
        });
        res.end(body === undefined ? '' : JSON.stringify(body));
      };
      req.resume();
      req.on('end', () => {
        switch (req.url) {
          case '/directory':
            return send(200, {
              newNonce: `${base}/nonce`,
              newAccount: `${base}/account`,
              newOrder: `${base}/order`,
              revokeCert: `${base}/revoke`,
              meta: {},
            });
          case '/nonce':
            return send(200);
          case '/account':
            if (mode === 'eab')
              return send(
                403,
                problem('externalAccountRequired', 'External Account Binding required', { status: 403 }),
              );
            return send(201, { status: 'valid' }, { location: `${base}/account/1` });
          case '/order':
            if (mode === 'rate') {
              return send(
                429,
                problem(
                  'rateLimited',
                  'Error creating new order :: too many certificates (5) already issued for this exact set of identifiers in the last 168h0m0s, retry after 2030-01-01 00:00:00 UTC: see https://letsencrypt.org/docs/rate-limits/',
                  { status: 429 },
                ),
                { 'retry-after': '3600' },
              );
            }
            if (mode === 'compound') {
              return send(400, {
                ...problem('rejectedIdentifier', 'Error creating new order :: Cannot issue for 2 identifiers'),
                subproblems: [
                  {
                    type: 'urn:ietf:params:acme:error:rejectedIdentifier',
                    detail: 'Domain name is a public suffix',
                    identifier: { type: 'dns', value: 'co.uk' },
                  },
                  {
                    type: 'urn:ietf:params:acme:error:malformed',
                    detail: 'Domain name contains an invalid character',
                    identifier: { type: 'dns', value: 'a_b.example.com' },
                  },
                ],
              });
            }
            if (mode === 'badNonce') return send(400, problem('badNonce', 'JWS has an invalid anti-replay nonce: "x"'));
            if (mode === 'userAction') {
              return send(
                403,
                problem('userActionRequired', 'Terms of service have changed', {
                  status: 403,
                  instance: `${base}/agree`,
                }),
                { link: `<${base}/terms/v2>;rel="terms-of-service"` },
              );
            }
            if (mode === 'server503')
              return send(503, problem('serverInternal', 'The service is down for maintenance', { status: 503 }));
            return send(
              201,
              {
                status: 'pending',
                identifiers: [{ type: 'dns', value: 'a.example' }],
                authorizations: [`${base}/authz/1`],
                finalize: `${base}/finalize`,
              },
              { location: `${base}/order/1` },
            );
          case '/authz/1':
            return send(200, {
              status: 'invalid',
              identifier: { type: 'dns', value: 'a.example' },
              challenges: [challenge(true)],
            });
          case '/chall/1':
            return send(200, challenge(mode !== 'noDetail'));
          case '/revoke':
            return send(400, problem('alreadyRevoked', 'Certificate already revoked'));
          default:
            return send(404, { type: 'about:blank', detail: 'not found' });
        }
      });
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${server.address().port}`;
  });

  after(async () => {
    Object.assign(acme.axios.defaults.acmeSettings, saved);
    if (server) await new Promise((resolve) => server.close(resolve));
  });

  const client = async () => {
    const c = new acme.Client({
      directoryUrl: `${base}/directory`,
      accountKey,
      backoffAttempts: 1,
      backoffMin: 1,
      backoffMax: 2,
    });
    if (mode !== 'eab') await c.createAccount({ termsOfServiceAgreed: true });
    return c;
  };
  const caught = (promise) =>
    promise.then(
      () => assert.fail('expected a failure'),
      (error) => error,
    );
  const newOrder = (c) => c.createOrder({ identifiers: [{ type: 'dns', value: 'a.example' }] });

  test('a failed request is Error(detail): the recorder restores type, status and headers; without it the type is inferred', async () => {
    mode = 'eab';
    const recorder = attachProblemRecorder(acme.axios);
    try {
      const error = await caught((await client()).createAccount({ termsOfServiceAgreed: true }));
      assert.equal(error.constructor, Error);
      assert.equal(error.message, 'External Account Binding required', 'acme-client keeps only the detail');
      assert.equal(error.response, undefined);

      const exact = fromAcmeClientError(error, { recorder, operation: 'account' });
      assert.equal(exact.type, 'urn:ietf:params:acme:error:externalAccountRequired');
      assert.equal(exact.name, 'externalAccountRequired');
      assert.equal(exact.status, 403);
      assert.equal(exact.inferred, false);
      assert.equal(exact.url, `${base}/account`);
      const guessed = fromAcmeClientError(error, { operation: 'account' });
      assert.equal(guessed.name, 'externalAccountRequired');
      assert.equal(guessed.inferred, true);

      const { message, hint } = describeProblem(exact);
      assert.match(message, /^this CA requires External Account Binding/);
      assert.match(hint, /--eab-kid and --eab-hmac-file/);
      assert.equal(errorCodeFor(exact), 'EAB_REQUIRED');
      assert.equal(isRetryable(exact), false);
      const wrapped = toAcmeProblemError(error, { recorder });
      assert.ok(wrapped instanceof AcmeProblemError && wrapped instanceof McpkiError);
      assert.equal(wrapped.code, 'EAB_REQUIRED');
      assert.equal(wrapped.problem.name, 'externalAccountRequired');
    } finally {
      recorder.detach();
    }
  });

  test('rateLimited: "rate limited until" from Retry-After (recorder) or from the detail text', async () => {
    mode = 'rate';
    const recorder = attachProblemRecorder(acme.axios);
    try {
      const error = await caught(newOrder(await client()));
      const now = new Date();
      const exact = fromAcmeClientError(error, { recorder, now });
      assert.equal(exact.name, 'rateLimited');
      assert.equal(exact.status, 429);
      assert.equal(exact.retryAfterSeconds, 3600);
      assert.equal(exact.retryAfter.getTime(), now.getTime() + 3_600_000);
      const until = exact.retryAfter.toISOString().replace(/\.\d{3}Z$/, 'Z');
      assert.ok(
        describeProblem(exact).message.startsWith(`rate limited by the CA until ${until}`),
        describeProblem(exact).message,
      );
      assert.equal(isRetryable(exact), false, 'a rate limit is reported, not retried');
      assert.equal(errorCodeFor(exact), 'RATE_LIMITED');

      const guessed = fromAcmeClientError(error, { now: new Date('2029-12-31T23:00:00Z') });
      assert.equal(guessed.name, 'rateLimited');
      assert.equal(guessed.retryAfterSeconds, 3600, 'from "retry after 2030-01-01 00:00:00 UTC"');
      assert.equal(guessed.retryAfter.toISOString(), '2030-01-01T00:00:00.000Z');
      assert.match(
        describeProblem(guessed).message,
        /^rate limited by the CA until 2030-01-01T00:00:00Z: Error creating new order :: too many certificates/,
      );
      assert.match(describeProblem(guessed).hint, /wait until 2030-01-01T00:00:00Z/);
    } finally {
      recorder.detach();
    }
  });

  test('subproblems, badNonce, userActionRequired, 503 and alreadyRevoked', async () => {
    const recorder = attachProblemRecorder(acme.axios);
    try {
      mode = 'compound';
      const compound = fromAcmeClientError(await caught(newOrder(await client())), { recorder });
      assert.equal(compound.name, 'rejectedIdentifier');
      assert.deepEqual(
        compound.subproblems.map((s) => [s.name, s.identifier.value]),
        [
          ['rejectedIdentifier', 'co.uk'],
          ['malformed', 'a_b.example.com'],
        ],
      );
      const described = describeProblem(compound);
      assert.match(
        described.message,
        /the CA refused 2 identifiers: co\.uk \(rejectedIdentifier: Domain name is a public suffix\); a_b\.example\.com \(malformed/,
      );
      assert.match(described.hint, /remove co\.uk, a_b\.example\.com from -d/);

      mode = 'badNonce';
      const nonceError = await caught(newOrder(await client()));
      assert.equal(
        nonceError.message,
        'JWS has an invalid anti-replay nonce: "x"',
        "thrown after acme-client's own 5 badNonce retries",
      );
      const nonce = fromAcmeClientError(nonceError, { recorder });
      assert.equal(nonce.name, 'badNonce');
      assert.equal(isRetryable(nonce), true);
      assert.equal(isRetryable(fromAcmeClientError(nonceError)), true, 'inferred from the text too');

      mode = 'userAction';
      const action = fromAcmeClientError(await caught(newOrder(await client())), { recorder });
      assert.equal(action.name, 'userActionRequired');
      assert.equal(action.instance, `${base}/agree`);
      assert.equal(action.termsOfService, `${base}/terms/v2`);
      assert.match(describeProblem(action).hint, new RegExp(`visit ${base}/agree`));

      mode = 'server503';
      const down = fromAcmeClientError(await caught(newOrder(await client())), { recorder });
      assert.equal(down.status, 503);
      assert.equal(isRetryable(down), true);

      mode = 'ok';
      const revoked = fromAcmeClientError(await caught((await client()).revokeCertificate(RFC9773_EXAMPLE)), {
        recorder,
        operation: 'revoke',
      });
      assert.equal(revoked.name, 'alreadyRevoked');
      assert.equal(errorCodeFor(revoked), 'ALREADY_REVOKED');
      assert.match(describeProblem(revoked).message, /already revoked/);
    } finally {
      recorder.detach();
    }
  });

  test('a failed challenge: Error(detail), Error(JSON of the authorization), TypeError without detail', async () => {
    mode = 'ok';
    const c = await client();
    const order = await newOrder(c);
    const [authz] = await c.getAuthorizations(order);
    const context = {
      identifier: authz.identifier,
      challengeType: 'http-01',
      orderUrl: order.url,
      operation: 'challenge',
    };

    const challengeError = await caught(c.waitForValidStatus(authz.challenges[0]));
    assert.equal(
      challengeError.message,
      '127.0.0.1: Fetching http://a.example/.well-known/acme-challenge/tok: Connection refused',
    );
    const fromText = fromAcmeClientError(challengeError, context);
    assert.equal(fromText.name, 'connection');
    assert.equal(fromText.orderUrl, `${base}/order/1`);
    const { message, hint } = describeProblem(fromText);
    assert.equal(
      message,
      'http-01 challenge for a.example failed: port 80 of a.example was not reachable from the CA: 127.0.0.1: Fetching http://a.example/.well-known/acme-challenge/tok: Connection refused',
    );
    assert.match(hint, /port 80 must be open/);
    assert.equal(errorCodeFor(fromText), 'CHALLENGE_FAILED');
    assert.equal(isRetryable(fromText), false);

    // waiting on the authorization instead: acme-client throws the authorization as JSON
    const authzError = await caught(c.waitForValidStatus(authz));
    assert.ok(authzError.message.startsWith('{"status":"invalid"'), authzError.message);
    const fromJson = fromAcmeClientError(authzError, { orderUrl: order.url });
    assert.equal(fromJson.name, 'connection');
    assert.equal(fromJson.inferred, false);
    assert.deepEqual(fromJson.identifier, { type: 'dns', value: 'a.example' });
    assert.equal(fromJson.challengeType, 'http-01');
    assert.equal(fromJson.url, `${base}/chall/1`);

    // a challenge error without detail makes acme-client's formatter itself throw
    mode = 'noDetail';
    const recorder = attachProblemRecorder(acme.axios);
    try {
      const crash = await caught(c.waitForValidStatus(authz.challenges[0]));
      assert.ok(crash instanceof TypeError);
      assert.match(crash.message, /replace is not a function/);
      const restored = fromAcmeClientError(crash, { recorder, identifier: 'a.example' });
      assert.equal(restored.name, 'connection');
      assert.equal(restored.challengeType, 'http-01');
      assert.match(
        describeProblem(restored).message,
        /^http-01 challenge for a\.example failed: port 80 of a\.example was not reachable/,
      );
      assert.equal(fromAcmeClientError(crash).name, 'unknown');
    } finally {
      recorder.detach();
      mode = 'ok';
    }
  });

  test('network errors: acme-client throws a TypeError; the recorder keeps the code; transient codes are retryable', async () => {
    const closed = createHttpServer();
    await new Promise((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = closed.address().port;
    await new Promise((resolve) => closed.close(resolve));
    const directoryUrl = `http://127.0.0.1:${port}/directory`;

    const error = await caught(
      new acme.Client({ directoryUrl, accountKey }).createAccount({ termsOfServiceAgreed: true }),
    );
    assert.ok(error instanceof TypeError);
    assert.equal(error.message, "Cannot read properties of undefined (reading 'config')");
    const blind = fromAcmeClientError(error);
    assert.equal(blind.name, 'network');
    assert.equal(blind.networkCode, undefined);

    const interceptors = acme.axios.interceptors.response.handlers.length;
    const recorder = attachProblemRecorder(acme.axios);
    assert.equal(acme.axios.interceptors.response.handlers.length, interceptors + 1);
    try {
      const again = await caught(
        new acme.Client({ directoryUrl, accountKey }).createAccount({ termsOfServiceAgreed: true }),
      );
      const problem = fromAcmeClientError(again, { recorder, operation: 'directory' });
      assert.equal(problem.name, 'network');
      assert.equal(problem.networkCode, 'ECONNREFUSED');
      assert.equal(problem.url, directoryUrl);
      assert.equal(isRetryable(problem), false, 'connection refused is not transient');
      assert.match(
        describeProblem(problem).message,
        new RegExp(`^cannot reach the ACME server 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`),
      );
      assert.equal(errorCodeFor(problem), 'NETWORK');
    } finally {
      recorder.detach();
    }
    assert.equal(acme.axios.interceptors.response.handlers.length, interceptors, 'detach removes the interceptor');

    // axios errors as axios builds them: code on the error, no response
    for (const code of ['ECONNRESET', 'ETIMEDOUT', 'EAI_AGAIN']) {
      const transient = fromAcmeClientError(
        Object.assign(new Error(`read ${code}`), { isAxiosError: true, code, config: { url: `${base}/order` } }),
      );
      assert.equal(transient.networkCode, code);
      assert.equal(isRetryable(transient), true, code);
    }
    const serverError = fromAcmeClientError(
      Object.assign(new Error('Request failed with status code 500'), {
        isAxiosError: true,
        response: { status: 500, data: problem('serverInternal', 'boom', { status: 500 }), headers: {} },
      }),
    );
    assert.equal(serverError.name, 'serverInternal');
    assert.equal(isRetryable(serverError), false);
  });

  test("acme-client's own challenge self-checks and bookkeeping messages", () => {
    // the exact messages of acme-client 5.4.0 src/verify.js and src/client.js
    const cases = [
      [
        'Authorization not found in HTTP response from a.example',
        'incorrectResponse',
        'http-01',
        /^http-01 challenge for a\.example failed: port 80 of a\.example did not serve the expected/,
      ],
      [
        'No TXT records found for name: _acme-challenge.b.example',
        'dns',
        'dns-01',
        /^dns-01 challenge for b\.example failed: TXT record _acme-challenge\.b\.example not visible to this machine/,
      ],
      [
        'Authorization not found in DNS TXT record: _acme-challenge.b.example',
        'incorrectResponse',
        'dns-01',
        /TXT record _acme-challenge\.b\.example not visible/,
      ],
      [
        'Authorization not found in certificate from c.example',
        'incorrectResponse',
        'tls-alpn-01',
        /^tls-alpn-01 challenge for c\.example failed: port 443 of c\.example did not present the acme-tls\/1/,
      ],
      ['No account URL found, register account first', 'accountDoesNotExist', undefined, /account does not exist/],
      ['Operation is pending or processing', 'timeout', undefined, /did not finish in time/],
      [
        'Attempting to read ACME directory returned error 404: https://ca.test/dir',
        'badDirectory',
        undefined,
        /ACME directory is unusable/,
      ],
    ];
    for (const [text, name, challengeType, pattern] of cases) {
      const p = fromAcmeClientError(new Error(text));
      assert.equal(p.name, name, text);
      assert.equal(p.origin, 'local', text);
      assert.equal(p.challengeType, challengeType, text);
      assert.match(describeProblem(p).message, pattern);
    }
  });

  test('describeProblem: one line and a fix for each problem type', () => {
    const dns01 = problemFromDocument(
      {
        type: 'urn:ietf:params:acme:error:unauthorized',
        detail: 'Incorrect TXT record "abc" found at _acme-challenge.example.com',
        status: 403,
      },
      { identifier: { type: 'dns', value: '*.example.com' }, challengeType: 'dns-01' },
    );
    assert.equal(
      describeProblem(dns01).message,
      'dns-01 challenge for *.example.com failed: TXT record _acme-challenge.example.com not visible to the CA: Incorrect TXT record "abc" found at _acme-challenge.example.com',
    );
    assert.match(describeProblem(dns01).hint, /--dns-hook/);

    const expectations = {
      badRevocationReason: [/does not accept this revocation reason/, /--reason/],
      alreadyRevoked: [/already revoked/, /nothing left/],
      externalAccountRequired: [/requires External Account Binding/, /--eab-kid and --eab-hmac-file/],
      unauthorized: [/the CA refused/, /--account/],
      rejectedIdentifier: [/will not issue for a\.example/, /remove it from -d/],
      caa: [/a\.example: CAA records of a\.example do not allow this CA/, /CAA record/],
      dns: [/could not resolve a\.example/, /public DNS/],
      tls: [/TLS error between the CA and a\.example/, /acme-tls\/1/],
      incorrectResponse: [/wrong challenge response from a\.example/, /TXT record/],
      malformed: [/rejected the request as malformed/, /report it/],
      serverInternal: [/internal error/, /try again later/],
      userActionRequired: [/requires an action from you/, /visit https:\/\/ca\.test\/tos/],
      connection: [/could not connect to a\.example/, /dns-01/],
      badCSR: [/rejected the key or the CSR/, /--key/],
      invalidContact: [/contact address/, /--email/],
      invalidProfile: [/rejected the certificate profile/, /drop --profile/],
      alreadyReplaced: [/already replaced/, /without "replaces"/],
      orderNotReady: [/not ready to finalize/, /try again/],
      unsupportedIdentifier: [/does not issue for a\.example/, /RFC 8738/],
      somethingNew: [/reported a problem \(somethingNew\)/, /see the detail/],
    };
    for (const [name, [message, hint]] of Object.entries(expectations)) {
      const p = problemFromDocument(
        {
          type: `urn:ietf:params:acme:error:${name}`,
          detail: `detail\nof ${name}`,
          status: 400,
          ...(name === 'userActionRequired' ? { instance: 'https://ca.test/tos' } : {}),
        },
        { identifier: 'a.example' },
      );
      const described = describeProblem(p);
      assert.match(described.message, message, name);
      assert.match(described.hint, hint, name);
      assert.ok(!described.message.includes('\n') && !described.hint.includes('\n'), `${name}: one line each`);
      assert.ok(
        described.message.includes(`detail of ${name}`) || name === 'externalAccountRequired',
        `${name}: keeps the detail`,
      );
      assert.ok(!isRetryable(p), name);
    }
  });

  test('details of real CAs without a type: inference', () => {
    const cases = [
      [
        'Error creating new order :: too many failed authorizations recently: see https://letsencrypt.org/docs/failed-validation-limit/',
        'rateLimited',
      ],
      ['JWS has an invalid anti-replay nonce: "abc"', 'badNonce'],
      ['CAA record for example.com prevents issuance', 'caa'],
      [
        'DNS problem: NXDOMAIN looking up A for nope.example.com - check that a DNS record exists for this domain',
        'dns',
      ],
      [
        '127.0.0.1: Fetching http://a.example:5002/.well-known/acme-challenge/x: Timeout during connect (likely firewall problem)',
        'connection',
      ],
      [
        'The key authorization file from the server did not match this challenge. Expected "a" (got "b")',
        'incorrectResponse',
      ],
      ['Correct value not found for DNS challenge', 'incorrectResponse'],
      [
        'Error creating new order :: Cannot issue for "localhost": Domain name does not end with a valid public suffix (TLD)',
        'rejectedIdentifier',
      ],
      ['Certificate already revoked', 'alreadyRevoked'],
      [
        'unsupported revocation reason code provided: 6. Supported reasons: 0 (unspecified), 1 (keyCompromise)',
        'badRevocationReason',
      ],
    ];
    for (const [detail, name] of cases) {
      const p = fromAcmeClientError(new Error(detail));
      assert.equal(p.name, name, detail);
      assert.equal(p.inferred, true);
    }
    assert.equal(
      fromAcmeClientError(new Error('Error creating new order :: Cannot issue for "localhost": x')).identifier.value,
      'localhost',
    );
  });
});
