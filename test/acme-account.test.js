// ACME account features against a real ACME server (Pebble, test/pebble.js): the account key type, a contact
// update (RFC 8555 7.3.2) and an account key rollover (RFC 8555 7.3.5), each checked with acme-client as an
// independent client of the same Pebble and with openssl reading the key files.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import https from 'node:https';
import { existsSync, readFileSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { createContext } from '../dist/index.js';
import { mcpki, mcpkiAsync, run, tempDir, testStore } from './helpers.js';
import { hasPebble, startPebble } from './pebble.js';

const require = createRequire(import.meta.url);
const skip = !hasPebble() && 'Pebble is not installed (apt-get install pebble)';

/** What openssl says the key in a file is: "ec-p256", "ec-p384" or "rsa-BITS". */
function opensslKeyType(path) {
  const text = run('openssl', ['pkey', '-in', path, '-noout', '-text']).stdout;
  if (/ASN1 OID: prime256v1/.test(text)) return 'ec-p256';
  if (/ASN1 OID: secp384r1/.test(text)) return 'ec-p384';
  const rsa = /Private-Key: \((\d+) bit/.exec(text);
  if (rsa && /modulus/.test(text)) return `rsa-${rsa[1]}`;
  return `unknown: ${text.slice(0, 80)}`;
}

describe('ACME accounts against Pebble', { skip }, () => {
  let pebble;
  let work;
  let home;
  let acme;
  let previousAgent;

  /** An acme-client of our own on the account (or looking one up by key, without accountUrl). */
  const peer = (keyPem, accountUrl) =>
    new acme.Client({ directoryUrl: pebble.directoryUrl, accountKey: keyPem, ...(accountUrl ? { accountUrl } : {}) });
  const cli = (args, options) => mcpki(['--home', home, ...args], options);
  const register = (name, extra = []) =>
    cli([
      '--json',
      'acme',
      'account',
      'register',
      '--directory',
      pebble.directoryUrl,
      '--ca-bundle',
      pebble.caBundlePath,
      '--email',
      'ops@example.com',
      '--agree-tos',
      '--name',
      name,
      ...extra,
    ]);

  before(async () => {
    pebble = await startPebble();
    work = tempDir('mcpki-acme-account-');
    home = join(work.dir, 'home');
    acme = require('acme-client');
    previousAgent = acme.axios.defaults.httpsAgent;
    acme.axios.defaults.httpsAgent = new https.Agent({ ca: readFileSync(pebble.caBundlePath) });
  });
  after(async () => {
    if (acme) acme.axios.defaults.httpsAgent = previousAgent;
    await pebble?.stop();
    work?.cleanup();
  });

  test('register --key-type: the key file has that type, shown by show and list; ed25519 and unknown types are refused before anything is sent', () => {
    for (const [name, type] of [
      ['p384', 'ec-p384'],
      ['rsa', 'rsa-2048'],
      ['default', undefined],
    ]) {
      const registered = register(name, type ? ['--key-type', type] : []);
      assert.equal(registered.status, 0, registered.stderr + registered.stdout);
      const expected = type ?? 'ec-p256';
      assert.equal(registered.json.account.keyType, expected);
      assert.equal(opensslKeyType(registered.json.account.keyPath), expected);
      assert.equal((statSync(registered.json.account.keyPath).mode & 0o777).toString(8), '600');
      const shown = cli(['acme', 'account', 'show', name]);
      assert.match(shown.stdout, new RegExp(`key type\\s+${expected}`));
    }
    const listed = cli(['--json', 'acme', 'account', 'list']);
    assert.deepEqual(Object.fromEntries(listed.json.accounts.map((a) => [a.name, a.keyType])), {
      default: 'ec-p256',
      p384: 'ec-p384',
      rsa: 'rsa-2048',
    });
    assert.match(cli(['acme', 'account', 'list']).stdout, /KEY[\s\S]*ec-p384/);

    for (const bad of ['ed25519', 'dsa-1024']) {
      const refused = register(`bad-${bad}`, ['--key-type', bad]);
      assert.equal(refused.status, 3, refused.stderr);
      const { error } = JSON.parse(refused.stdout); // --json: the error is JSON on stdout
      assert.equal(error.code, 'INVALID_KEY_TYPE');
      assert.equal(error.message, `"${bad}" is not an ACME account key type`);
      assert.match(error.hint, /ec-p256, ec-p384, rsa-2048/);
      assert.ok(!existsSync(join(home, 'acme', 'accounts', `bad-${bad}.key`)));
    }
  });

  test('account update --email: the CA has the new contact, and so does the inventory', async () => {
    const registered = register('contact');
    assert.equal(registered.status, 0, registered.stderr);
    const { keyPath, accountUrl } = registered.json.account;

    const updated = cli(['--json', 'acme', 'account', 'update', 'contact', '--email', 'certs@example.org']);
    assert.equal(updated.status, 0, updated.stderr + updated.stdout);
    assert.equal(updated.json.account.email, 'certs@example.org');
    assert.equal(cli(['--json', 'acme', 'account', 'show', 'contact']).json.account.email, 'certs@example.org');

    // an independent client looking the account up by its key sees the new contact at the CA
    const client = peer(readFileSync(keyPath));
    const account = await client.createAccount({ onlyReturnExisting: true });
    assert.equal(client.getAccountUrl(), accountUrl);
    assert.deepEqual(account.contact, ['mailto:certs@example.org']);

    const events = cli(['--json', 'events']).json;
    assert.ok(JSON.stringify(events).includes('acme.account.updated'), JSON.stringify(events).slice(0, 400));

    for (const bad of ['not-an-address', 'a@b\u0007.example']) {
      const refused = cli(['acme', 'account', 'update', 'contact', '--email', bad]);
      assert.equal(refused.status, 3, refused.stderr);
      assert.match(refused.stderr, /invalid e-mail address/);
    }
    assert.equal(cli(['--json', 'acme', 'account', 'show', 'contact']).json.account.email, 'certs@example.org');
    const missing = cli(['acme', 'account', 'update', 'nope', '--email', 'x@example.org']);
    assert.notEqual(missing.status, 0);
    assert.match(missing.stderr, /no ACME account named "nope"/);
  });

  test('account rollover: the CA takes the new key, a new order works with it, the old key is refused', async () => {
    const registered = register('roll');
    assert.equal(registered.status, 0, registered.stderr);
    const { keyPath, accountUrl } = registered.json.account;
    const oldKey = readFileSync(keyPath);

    const rolled = cli(['--json', 'acme', 'account', 'rollover', 'roll', '--key-type', 'ec-p384']);
    assert.equal(rolled.status, 0, rolled.stderr + rolled.stdout);
    assert.equal(rolled.json.recovered, false);
    assert.equal(rolled.json.previousKeyType, 'ec-p256');
    assert.equal(rolled.json.account.keyType, 'ec-p384');
    assert.notEqual(rolled.json.thumbprint, rolled.json.previousThumbprint);
    const newKey = readFileSync(keyPath);
    assert.notDeepEqual(newKey, oldKey);
    assert.equal(opensslKeyType(keyPath), 'ec-p384');
    assert.equal((statSync(keyPath).mode & 0o777).toString(8), '600');
    assert.ok(!existsSync(`${keyPath}.rollover`), 'no pending key left');

    // the CA: the new key finds the same account; the old key finds none and cannot sign for it
    const byNew = peer(newKey);
    await byNew.createAccount({ onlyReturnExisting: true });
    assert.equal(byNew.getAccountUrl(), accountUrl);
    await assert.rejects(
      peer(oldKey).createAccount({ onlyReturnExisting: true }),
      /unable to find existing account|does not exist/i,
    );
    await assert.rejects(peer(oldKey, accountUrl).createOrder({ identifiers: [{ type: 'dns', value: 'old.test' }] }));

    // a new order through mcpki with the rolled-over account
    const issued = await mcpkiAsync([
      '--home',
      home,
      '--json',
      'acme',
      'issue',
      'rolled',
      '-d',
      'rolled.test',
      '--account',
      'roll',
      '--http-port',
      String(pebble.httpPort),
      '--http-host',
      '127.0.0.1',
    ]);
    assert.equal(issued.status, 0, issued.stderr + issued.stdout);
    assert.equal(JSON.parse(issued.stdout).certificate.issuer, 'acme:roll');

    // default: the same type as the current key
    const again = cli(['--json', 'acme', 'account', 'rollover', 'roll']);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.json.account.keyType, 'ec-p384');
    assert.equal(again.json.previousThumbprint, rolled.json.thumbprint);
  });

  test('rollover after an interrupted one: a key the CA already took is installed, one it never saw is discarded', async () => {
    const registered = register('crash');
    assert.equal(registered.status, 0, registered.stderr);
    const { keyPath, accountUrl } = registered.json.account;
    const pending = `${keyPath}.rollover`;

    // a run that wrote the new key and got it accepted, then died before renaming it over the old one
    const accepted = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    });
    writeFileSync(pending, accepted, { mode: 0o600 });
    const client = peer(readFileSync(keyPath), accountUrl);
    await client.updateAccountKey(accepted);
    const finished = cli(['--json', 'acme', 'account', 'rollover', 'crash']);
    assert.equal(finished.status, 0, finished.stderr + finished.stdout);
    assert.equal(finished.json.recovered, true);
    assert.equal(readFileSync(keyPath, 'utf8'), accepted);
    assert.ok(!existsSync(pending));

    // a run that died before the CA saw its key: the key is dropped and a real rollover follows
    const stray = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    });
    writeFileSync(pending, stray, { mode: 0o600 });
    const rolled = cli(['--json', 'acme', 'account', 'rollover', 'crash']);
    assert.equal(rolled.status, 0, rolled.stderr + rolled.stdout);
    assert.equal(rolled.json.recovered, false);
    const current = readFileSync(keyPath, 'utf8');
    assert.notEqual(current, stray);
    assert.notEqual(current, accepted);
    const byCurrent = peer(current);
    await byCurrent.createAccount({ onlyReturnExisting: true });
    assert.equal(byCurrent.getAccountUrl(), accountUrl);

    // a pending key that is a symlink is refused, and nothing changes
    const elsewhere = join(work.dir, 'elsewhere.key');
    writeFileSync(elsewhere, stray, { mode: 0o600 });
    symlinkSync(elsewhere, pending);
    const refused = cli(['acme', 'account', 'rollover', 'crash']);
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /symlink/);
    assert.equal(readFileSync(keyPath, 'utf8'), current);
    unlinkSync(pending);

    // a rollover of the same account in another (live) process: refused at once, nothing touched
    const context = createContext({ ...testStore(home), home });
    const me = { pid: process.pid, host: hostname(), acquiredAt: new Date().toISOString() };
    assert.equal(
      context.store().tryLock('acme-account-rollover:crash', me, () => true),
      undefined,
    );
    try {
      const busy = cli(['acme', 'account', 'rollover', 'crash']);
      assert.notEqual(busy.status, 0, busy.stdout);
      assert.match(busy.stderr, /a key rollover of ACME account "crash" is already running \(pid \d+/);
      assert.equal(readFileSync(keyPath, 'utf8'), current);
      assert.ok(!existsSync(pending));
    } finally {
      context.store().unlock('acme-account-rollover:crash', me);
      context.close();
    }
    const afterLock = cli(['--json', 'acme', 'account', 'rollover', 'crash']);
    assert.equal(afterLock.status, 0, afterLock.stderr + afterLock.stdout);
  });

  test('a rollover whose answer is lost keeps the new key, and the next rollover installs it', async (t) => {
    // a TLS-terminating proxy in front of Pebble (with Pebble's own certificate) that passes the key change on
    // and then drops the connection instead of answering: the CA has switched keys, mcpki never heard
    const tls = join(pebble.dir, 'home', 'certs', 'pebble');
    const upstream = new URL(pebble.directoryUrl);
    const pebbleCa = readFileSync(pebble.caBundlePath);
    let dropKeyChange = true;
    let dropped = 0;
    const proxy = https.createServer(
      { cert: readFileSync(join(tls, 'pebble.fullchain.pem')), key: readFileSync(join(tls, 'pebble.key')) },
      (req, res) => {
        const body = [];
        req.on('data', (chunk) => body.push(chunk));
        req.on('end', () => {
          const forwarded = https.request(
            {
              host: upstream.hostname,
              port: upstream.port,
              method: req.method,
              path: req.url,
              headers: req.headers,
              ca: pebbleCa,
              agent: false,
            },
            (answer) => {
              const data = [];
              answer.on('data', (chunk) => data.push(chunk));
              answer.on('end', () => {
                if (
                  dropKeyChange &&
                  req.method === 'POST' &&
                  req.url.startsWith('/rollover-account-key') &&
                  answer.statusCode === 200
                ) {
                  dropped++;
                  req.socket.destroy();
                  return;
                }
                res.writeHead(answer.statusCode, answer.headers).end(Buffer.concat(data));
              });
            },
          );
          forwarded.on('error', () => res.writeHead(502).end());
          forwarded.end(Buffer.concat(body));
        });
      },
    );
    await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise((resolve) => proxy.close(resolve)));
    const port = proxy.address().port;
    // the proxy runs in this process: the CLI must run asynchronously
    const cliAsync = async (args) => {
      const result = await mcpkiAsync(['--home', home, ...args]);
      return {
        ...result,
        json: args.includes('--json') && result.status === 0 ? JSON.parse(result.stdout) : undefined,
      };
    };

    const registered = await cliAsync([
      '--json',
      'acme',
      'account',
      'register',
      '--directory',
      `https://127.0.0.1:${port}/dir`,
      '--ca-bundle',
      pebble.caBundlePath,
      '--agree-tos',
      '--name',
      'lost',
    ]);
    assert.equal(registered.status, 0, registered.stderr + registered.stdout);
    const { keyPath, accountUrl } = registered.json.account;
    assert.equal(new URL(accountUrl).port, String(port), 'the account is reached through the proxy');
    const before = readFileSync(keyPath, 'utf8');
    const pending = `${keyPath}.rollover`;

    const lost = await cliAsync(['acme', 'account', 'rollover', 'lost']);
    assert.equal(dropped, 1, 'the CA accepted the key change and its answer was dropped');
    assert.notEqual(lost.status, 0, lost.stdout);
    assert.match(
      lost.stderr,
      /may or may not have switched account "lost" to the new key, kept in .*lost\.key\.rollover/,
    );
    assert.match(lost.stderr, /run "mcpki acme account rollover lost" again/);
    assert.equal(readFileSync(keyPath, 'utf8'), before, 'the old key is still in place');
    assert.equal((statSync(pending).mode & 0o777).toString(8), '600');
    // the CA knows the account by the pending key only
    const byPending = peer(readFileSync(pending));
    await byPending.createAccount({ onlyReturnExisting: true });
    assert.equal(new URL(byPending.getAccountUrl()).pathname, new URL(accountUrl).pathname);
    await assert.rejects(peer(before).createAccount({ onlyReturnExisting: true }), /unable to find existing account/i);
    assert.equal(cli(['--json', 'acme', 'account', 'show', 'lost']).json.account.keyRolloverPending, true);
    // nothing else uses the account until the rollover is finished
    const blocked = await cliAsync([
      'acme',
      'issue',
      'blocked',
      '-d',
      'blocked.test',
      '--account',
      'lost',
      '--http-port',
      String(pebble.httpPort),
      '--http-host',
      '127.0.0.1',
    ]);
    assert.notEqual(blocked.status, 0, blocked.stdout);
    assert.match(blocked.stderr, /the key of ACME account "lost" is in the middle of a rollover/);
    assert.match(blocked.stderr, /run "mcpki acme account rollover lost"/);
    assert.match(
      cli(['acme', 'account', 'show', 'lost']).stdout,
      /key rollover\s+unfinished: run "mcpki acme account rollover lost"/,
    );

    dropKeyChange = false;
    const pendingKey = readFileSync(pending, 'utf8');
    const finished = await cliAsync(['--json', 'acme', 'account', 'rollover', 'lost']);
    assert.equal(finished.status, 0, finished.stderr + finished.stdout);
    assert.equal(finished.json.recovered, true);
    assert.equal(readFileSync(keyPath, 'utf8'), pendingKey);
    assert.ok(!existsSync(pending));
    assert.equal(cli(['--json', 'acme', 'account', 'show', 'lost']).json.account.keyRolloverPending, false);
  });

  test('a rollover the CA refuses leaves the old key in place and no pending key', async () => {
    const registered = register('refused');
    assert.equal(registered.status, 0, registered.stderr);
    const { keyPath } = registered.json.account;
    const before = readFileSync(keyPath, 'utf8');
    // deactivated at the CA behind mcpki's back: the CA refuses the key change (unauthorized)
    await peer(before, registered.json.account.accountUrl).updateAccount({ status: 'deactivated' });
    const result = cli(['acme', 'account', 'rollover', 'refused']);
    assert.notEqual(result.status, 0, result.stdout);
    assert.equal(readFileSync(keyPath, 'utf8'), before);
    assert.ok(!existsSync(`${keyPath}.rollover`));
  });
});
