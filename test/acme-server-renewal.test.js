// mcpki's own ACME client against mcpki's ACME server, both as processes: `acme account register`, an mcpki.yaml
// with `issuer: acme:local`, `apply` obtains the certificate and records the server's ARI window (2/3 to 3/4 of
// the lifetime); after `acme-server renew-early`, the next check whose Retry-After has passed fetches the moved
// window and renews (RFC 9773 §4.3). The client lives in a home of its own, as it would on another host.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { mcpki, tempDir, storeEnv } from './helpers.js';
import { spawnAcmeServer } from './acme-server-helpers.js';

let work;
let server;
let caHome;
let clientHome;
let httpPort;

function freePort() {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

before(async () => {
  work = tempDir('mcpki-acme-renewal-');
  caHome = join(work.dir, 'ca-home');
  clientHome = join(work.dir, 'client-home');
  assert.equal(mcpki(['init', '--home', caHome]).status, 0);
  httpPort = await freePort();
  const started = await spawnAcmeServer(caHome, ['--listen', '127.0.0.1:0', '--http-port', String(httpPort)]);
  server = { directoryUrl: started.directoryUrl, stop: async () => (await started.stop()).code };
});

after(async () => {
  if (server) assert.equal(await server.stop(), 0, 'SIGTERM: the server drains and exits 0');
  work?.cleanup();
});

const client = (args) => mcpki(['--home', clientHome, '--json', ...args]);

test("apply gets a certificate from mcpki's ACME server, keeps its ARI window, and renews at the next check after renew-early", async () => {
  const registered = client([
    'acme',
    'account',
    'register',
    '--name',
    'local',
    '--directory',
    server.directoryUrl,
    '--ca-bundle',
    join(caHome, 'ca', 'root.crt'),
    '--email',
    'ops@example.test',
    '--agree-tos',
  ]);
  assert.equal(registered.status, 0, registered.stderr);
  const config = join(work.dir, 'mcpki.yaml');
  writeFileSync(
    config,
    `version: 1\ncertificates:\n  - name: svc\n    issuer: acme:local\n    names: [localhost]\n    challenge: { type: http-01, port: ${httpPort}, host: 127.0.0.1 }\n    targets:\n      - { type: fullchain, path: ${join(work.dir, 'svc.crt')} }\n      - { type: key, path: ${join(work.dir, 'svc.key')} }\n`,
  );

  const first = client(['apply', '-c', config]);
  assert.equal(first.status, 0, first.stderr + first.stdout);
  const issued = client(['show', 'svc']).json;
  const record = issued.certificate ?? issued;
  assert.match(record.issuer, /^acme:local$/);
  const window = record.renewalInfo;
  assert.ok(window, `the server's ARI window is recorded: ${JSON.stringify(record)}`);
  const lifetime = Date.parse(record.notAfter) - Date.parse(record.notBefore);
  const startFraction = (Date.parse(window.windowStart) - Date.parse(record.notBefore)) / lifetime;
  assert.ok(startFraction > 0.6 && startFraction < 0.7, `window starts at 2/3 of the lifetime (${startFraction})`);

  const quiet = client(['renew', '--dry-run', '-c', config]).json.plan.find((p) => p.name === 'svc');
  assert.equal(quiet.due, false, JSON.stringify(quiet));

  // the CA moves the window: the client sees it once the server's Retry-After has passed
  const moved = mcpki(['--home', caHome, '--json', 'acme-server', 'renew-early', '--serial', record.serial]);
  assert.equal(moved.status, 0, moved.stderr);
  const unchanged = client(['apply', '-c', config]);
  assert.equal(unchanged.status, 0, unchanged.stderr);
  assert.equal(
    (client(['show', 'svc']).json.certificate ?? client(['show', 'svc']).json).serial,
    record.serial,
    'before its next check, the window on record stands',
  );

  const due = [new Date(Date.now() - 1000).toISOString(), record.serial];
  if (process.env.MCPKI_TEST_POSTGRES) {
    // the PostgreSQL pass: the client home's schema (test/helpers.js storeEnv)
    const schema = new URL(storeEnv(['--home', clientHome]).MCPKI_STORE).searchParams.get('schema');
    const pgClient = new pg.Client({ connectionString: process.env.MCPKI_TEST_POSTGRES });
    await pgClient.connect();
    await pgClient.query(`UPDATE ${schema}.certificates SET ari_next_check = $1 WHERE serial = $2`, due);
    await pgClient.end();
  } else {
    const db = new Database(join(clientHome, 'mcpki.db'));
    db.prepare('UPDATE certificates SET ari_next_check = ? WHERE serial = ?').run(...due);
    db.close();
  }
  const renewed = client(['apply', '-c', config]);
  assert.equal(renewed.status, 0, renewed.stderr + renewed.stdout);
  const after = client(['show', 'svc']).json;
  assert.notEqual((after.certificate ?? after).serial, record.serial, 'renewed in the moved window');
  const events = client(['events']).json.events.map((e) => e.type);
  assert.ok(events.includes('acme.renewal-info'), events.join(', '));
});
