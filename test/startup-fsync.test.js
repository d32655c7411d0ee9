// `issue` writes a certificate's files (key, certificate, chain, CA) to temp names and makes them durable
// together before the first rename: each temp file is fsynced on libuv's thread pool (at once) and again on
// the main thread (which is what the durability rests on). strace shows both, and their order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, hasCommand, mcpki, storeEnv, tempDir } from './helpers.js';

test(
  'issue: the temp files are fsynced together on the thread pool and each again on the main thread, all before the first rename',
  { skip: (process.platform !== 'linux' || !hasCommand('strace')) && 'needs Linux and strace' },
  () => {
    const { dir, cleanup } = tempDir();
    try {
      const home = join(dir, 'home');
      assert.equal(mcpki(['--home', home, 'init']).status, 0);
      const trace = join(dir, 'trace');
      const args = ['--home', home, 'issue', 'server', 'together', 'together.localhost'];
      const r = spawnSync(
        'strace',
        ['-f', '-qq', '-o', trace, '-e', 'trace=openat,fsync,fdatasync,rename', process.execPath, BIN, ...args],
        { encoding: 'utf8', env: { ...process.env, ...storeEnv(args) } },
      );
      assert.equal(r.status, 0, r.stderr);
      const lines = readFileSync(trace, 'utf8').split('\n');
      const main = lines[0].split(' ')[0];
      // the temp files: NAME.key, NAME.crt, NAME.fullchain.pem, ca.crt, each opened O_EXCL with its final mode
      const temps = [];
      lines.forEach((line, i) => {
        const m = /openat\(AT_FDCWD, "([^"]*\.mcpki-tmp-[^"]*)", [^)]*O_EXCL[^)]*\) = (\d+)$/.exec(line);
        if (m && m[1].includes('/certs/together/')) temps.push({ path: m[1], fd: m[2], opened: i, threads: [] });
      });
      assert.equal(temps.length, 4, temps.map((t) => t.path).join(', '));
      const firstRename = lines.findIndex((l) => l.includes('rename(') && l.includes('.mcpki-tmp-'));
      assert.ok(firstRename > 0);
      lines.slice(0, firstRename).forEach((line, i) => {
        const m = /^(\d+) +f(?:data)?sync\((\d+)/.exec(line);
        // the file most recently opened with that descriptor
        const temp = m && temps.findLast((t) => t.fd === m[2] && t.opened < i);
        if (temp) temp.threads.push(m[1]);
      });
      for (const { path, threads } of temps) {
        assert.ok(threads.includes(main), `${path} is fsynced on the main thread before the renames`);
        assert.ok(
          threads.some((t) => t !== main),
          `${path} is fsynced on the thread pool too (threads ${threads.join(', ')})`,
        );
      }
      // the files are whole, with their modes
      const folder = join(home, 'certs', 'together');
      assert.equal(statSync(join(folder, 'together.key')).mode & 0o777, 0o600);
      assert.equal(
        readFileSync(join(folder, 'together.fullchain.pem'), 'utf8').split('-----END CERTIFICATE-----').length,
        3,
      );
      const verify = spawnSync('openssl', [
        'verify',
        '-CAfile',
        join(folder, 'ca.crt'),
        '-untrusted',
        join(folder, 'together.fullchain.pem'),
        join(folder, 'together.crt'),
      ]);
      assert.equal(verify.status, 0, String(verify.stderr));
    } finally {
      cleanup();
    }
  },
);
