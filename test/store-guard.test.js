// A home that holds a CA refuses a PostgreSQL inventory without that CA (a new database, a mistyped schema=):
// as with a deleted mcpki.db, a fresh inventory would forget the revocations. The right one keeps working.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mcpki, tempDir } from './helpers.js';
import { hasPostgres, postgresMissingReason, startPostgres } from './postgres.js';

const skip = hasPostgres() ? false : postgresMissingReason();

describe('a home with a CA and an empty PostgreSQL inventory', { skip }, () => {
  let cluster;
  let base;
  let temp;
  before(async () => {
    cluster = await startPostgres();
    base = await cluster.createDatabase('guard');
    temp = tempDir('mcpki-store-guard-');
  });
  after(async () => {
    temp?.cleanup();
    await cluster?.stop();
  });

  test('is refused with STORE_MISSING (exit 7) and nothing is created; the inventory of its CA is used', () => {
    const url = (schema) => `${base}${base.includes('?') ? '&' : '?'}schema=${schema}`;
    const home = temp.dir;
    const right = { MCPKI_STORE: url('right') };
    const init = mcpki(['--home', home, 'init'], { env: right });
    assert.equal(init.status, 0, init.stderr);
    assert.equal(mcpki(['--home', home, 'issue', 'server', 'api', 'localhost'], { env: right }).status, 0);
    assert.equal(mcpki(['--home', home, 'revoke', 'api'], { env: right }).status, 0);

    const wrong = mcpki(['--home', home, 'list'], { env: { MCPKI_STORE: url('typo') } });
    assert.equal(wrong.status, 7, wrong.stderr);
    assert.match(wrong.stderr, /holds no CA, but .* holds one .*would forget its revocations/);
    assert.equal(wrong.stderr.trim().split('\n').length, 2, 'one line of error, one of hint');
    const issued = mcpki(['--home', home, 'issue', 'server', 'other', 'localhost'], {
      env: { MCPKI_STORE: url('typo') },
    });
    assert.equal(issued.status, 7, 'nothing is issued into the empty inventory');

    const listed = mcpki(['--home', home, 'list', '--all', '--json'], { env: right });
    assert.equal(listed.status, 0, listed.stderr);
    assert.deepEqual(
      listed.json.certificates.map((c) => [c.name, c.state]),
      [['api', 'revoked']],
    );
  });
});
