// The renewal time drawn inside a CA's ARI window (RFC 9773 §4.2) is kept across checks: a service that
// drew a new random time at every check would, over many checks, renew near the window's start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mcpki, tempDir, testStore } from './helpers.js';
import { createContext } from '../dist/index.js';

const DAY = 86_400_000;

test('apply keeps the time it chose inside the ARI window; the next apply and renew --dry-run use it', () => {
  const { dir, cleanup } = tempDir('mcpki-ari-time-');
  const home = join(dir, 'home');
  const config = join(dir, 'mcpki.yaml');
  const cli = (...args) => mcpki(['--home', home, '--json', ...args], { cwd: dir });
  try {
    assert.equal(cli('init').status, 0);
    writeFileSync(
      config,
      'version: 1\ncertificates:\n  - name: api\n    names: [api.localhost]\n    days: 30\n    targets:\n      - { type: cert, path: deploy/api.crt }\n      - { type: key, path: deploy/api.key }\n',
    );
    const first = cli('apply', '-c', config);
    assert.equal(first.status, 0, first.stderr);
    const serial = first.json.items[0].serial;

    const now = Date.now();
    const window = { start: new Date(now + 10 * DAY), end: new Date(now + 20 * DAY) };
    const context = createContext({ home, ...testStore(home) });
    try {
      context.store().setRenewalInfo(serial, {
        windowStart: window.start.toISOString(),
        windowEnd: window.end.toISOString(),
        nextCheck: new Date(now + 5 * DAY).toISOString(),
        explanationUrl: null,
      });
    } finally {
      context.close?.();
    }

    const renewAts = [];
    for (let i = 0; i < 3; i++) {
      const run = cli('apply', '-c', config);
      assert.equal(run.status, 0, run.stderr);
      const item = run.json.items[0];
      assert.equal(item.serial, serial, 'not due: the same certificate');
      assert.equal(item.ariTime, item.renewAt, 'the time comes from the window');
      renewAts.push(item.renewAt);
    }
    const chosen = Date.parse(renewAts[0]);
    assert.ok(chosen >= window.start.getTime() && chosen <= window.end.getTime(), renewAts[0]);
    assert.deepEqual(renewAts, [renewAts[0], renewAts[0], renewAts[0]], 'each check keeps the time already drawn');

    const plan = cli('renew', '--dry-run', '-c', config);
    assert.equal(plan.status, 0, plan.stderr);
    assert.equal(plan.json.plan[0].renewAt, renewAts[0]);
  } finally {
    cleanup();
  }
});
