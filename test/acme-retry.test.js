// Which ACME failures are tried again: transient network errors and badNonce, never anything else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { retrying } from '../dist/acme/client.js';

const noSleep = async () => {};

test('a reset connection is tried again, up to three more times', async () => {
  let calls = 0;
  const result = await retrying(async () => {
    calls++;
    if (calls < 3) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    return 'order';
  }, noSleep);
  assert.equal(result, 'order');
  assert.equal(calls, 3);

  let always = 0;
  await assert.rejects(
    retrying(async () => {
      always++;
      throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    }, noSleep),
    /socket hang up/,
  );
  assert.equal(always, 4);
});

test('anything else fails at once: a refused connection, a problem from the CA', async () => {
  for (const error of [
    Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
    new Error('Error creating new order :: too many certificates already issued'),
  ]) {
    let calls = 0;
    await assert.rejects(
      retrying(async () => {
        calls++;
        throw error;
      }, noSleep),
    );
    assert.equal(calls, 1, error.message);
  }
});
