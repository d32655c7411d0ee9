// Batch issuance's worker runs from one bundle compiled with V8's code cache (src/pki/batch-pool.ts): the
// build's cache must fit the text the loader compiles, or every worker silently compiles from source.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Script } from 'node:vm';
import { Worker } from 'node:worker_threads';
import { LOADER } from '../dist/pki/batch-pool.js';
import { ROOT } from './helpers.js';

const { readWrapped } = createRequire(import.meta.url)('../bin/load-bundle.js');

const bundle = join(ROOT, 'dist', 'pki', 'batch-worker.cjs');

test('the build made a code cache for the worker bundle, and V8 takes it for the text the loader compiles', () => {
  const file = readFileSync(`${bundle}.cache`);
  const length = file.readUInt32LE(0);
  assert.equal(file.toString('utf8', 4, 4 + length), bundle, 'the cache names the bundle it was made for');
  const script = new Script(readWrapped(bundle), {
    filename: bundle,
    cachedData: file.subarray((4 + length + 7) & ~7),
  });
  assert.equal(script.cachedDataRejected, false);
});

test('the loader runs the bundle in a worker: it answers a chunk request (an error for a chunk it cannot sign)', async () => {
  const ca = {
    pem: '',
    rootPem: '',
    der: new Uint8Array(0),
    signer: { subject: new Uint8Array(0), keyId: new Uint8Array(0) },
  };
  const worker = new Worker(LOADER, { eval: true, argv: [bundle], workerData: ca });
  try {
    const reply = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.postMessage({ id: 7, plans: [{ keyType: 'no-such-key' }], now: Date.now() });
    });
    assert.equal(reply.id, 7);
    assert.ok(reply.error, 'the worker answers with the error');
  } finally {
    await worker.terminate();
  }
});
