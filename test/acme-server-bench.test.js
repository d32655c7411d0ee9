// bench/acme-server.js with a server that hangs: Pebble is stopped (SIGSTOP) once the first round has begun, so
// its round never finishes. With --round-timeout the run still ends: Pebble's process is killed by its PID, its
// round is reported as failed (and its next round skipped), the other servers' rounds are measured, and the run
// exits 1 saying which server failed. (The timeout is long enough for mcpki's 4 orders on a loaded machine.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tempDir } from './helpers.js';
import { hasPebble } from './pebble.js';
import { childProcesses, processAlive } from './postgres.js';

const skip = hasPebble() ? false : 'Pebble is not installed (Debian package "pebble")';

/** The PID of the bench's Pebble: its child whose command line runs the pebble binary (not challtestsrv). */
function pebblePid(benchPid) {
  for (const pid of childProcesses(benchPid)) {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (/(^|\/)pebble$/.test(argv[0])) return pid;
  }
  return undefined;
}

test(
  'a round that hangs is killed by PID after --round-timeout, reported failed, and the run goes on',
  { skip, timeout: 240_000 },
  async () => {
    const { dir, cleanup } = tempDir('mcpki-bench-timeout-');
    try {
      const out = join(dir, 'result.json');
      const child = spawn(
        process.execPath,
        [
          join(ROOT, 'bench', 'acme-server.js'),
          ...['--orders', '4', '--clients', '2', '--rounds', '2', '--warmup', '0', '--no-postgres'],
          ...['--round-timeout', '20', '--out', out],
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      let stopped;
      child.stderr.on('data', (d) => {
        stderr += d;
        // mcpki's first round has begun: every server has its accounts; Pebble stops answering
        if (!stopped && /round 1\/2, mcpki:/.test(stderr)) {
          stopped = pebblePid(child.pid);
          assert.ok(stopped, 'the bench runs Pebble');
          process.kill(stopped, 'SIGSTOP');
        }
      });
      // without the round timeout the run never ends: stopped here (SIGINT: the bench cleans up), and failed
      const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
      let timer;
      const status = await Promise.race([
        exited,
        new Promise((resolve) => (timer = setTimeout(() => resolve('hung'), 150_000))),
      ]);
      clearTimeout(timer);
      if (status === 'hung') {
        child.kill('SIGINT');
        if (stopped) process.kill(stopped, 'SIGCONT');
        await exited;
      }
      assert.notEqual(status, 'hung', `the bench did not finish: ${stderr}`);
      assert.ok(stopped, `Pebble was stopped: ${stderr}`);
      assert.equal(processAlive(stopped), false, 'the hung Pebble was killed');
      assert.equal(status, 1, `${stdout}\n${stderr}`);
      assert.match(stderr, /pebble: 4 orders from 2 clients… FAILED \(round 1: no result within 20 s; killed \d+\)/);
      assert.match(stdout, /pebble failed: round 1: no result within 20 s/);
      const result = JSON.parse(readFileSync(out, 'utf8'));
      const byName = Object.fromEntries(result.servers.map((s) => [s.name, s]));
      assert.equal(byName.pebble.rounds.length, 2);
      assert.ok(byName.pebble.rounds.every((r) => r.failed));
      assert.equal(byName.pebble.rounds[1].skipped, true);
      for (const name of ['mcpki', 'mcpki sqlite']) {
        assert.equal(byName[name].rounds.length, 2, name);
        for (const round of byName[name].rounds)
          assert.ok(round.ordersPerSecond > 0, `${name}: ${JSON.stringify(round)}`);
      }
    } finally {
      cleanup();
    }
  },
);
