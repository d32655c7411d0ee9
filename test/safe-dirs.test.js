// assertSafeDir with a run's SafeDirs: folders already found safe are not walked again, and everything the walk
// refuses without it is still refused with it (a folder others can write, a symlink of another user's).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { assertSafeDir } from '../dist/fs/safe-path.js';
import { tempDir } from './helpers.js';

test('assertSafeDir: a run walks the common folders once, and still refuses an unsafe folder below them', () => {
  const { dir, cleanup } = tempDir();
  try {
    const certs = join(dir, 'certs');
    mkdirSync(join(certs, 'a'), { recursive: true, mode: 0o700 });
    mkdirSync(join(certs, 'b'), { mode: 0o700 });
    mkdirSync(join(certs, 'open'), { mode: 0o700 });
    chmodSync(join(certs, 'open'), 0o777);
    symlinkSync(join(certs, 'a'), join(certs, 'link'));
    const checked = new Map();
    assert.equal(assertSafeDir(join(certs, 'a'), undefined, checked), join(certs, 'a'));
    assert.equal(checked.get(join(certs, 'a')), join(certs, 'a'));
    assert.equal(checked.get('/'), '/');
    // below checked folders: the same answers as a walk from /
    for (const path of [join(certs, 'b'), join(certs, 'link'), join(certs, 'missing', 'x'), join(certs, 'a', 'new')])
      assert.equal(assertSafeDir(path, undefined, checked), assertSafeDir(path));
    assert.equal(checked.has(join(certs, 'missing')), false); // a folder that does not exist is not recorded
    assert.throws(() => assertSafeDir(join(certs, 'open'), undefined, checked), { code: 'UNSAFE_PATH' });
    assert.throws(() => assertSafeDir(join(certs, 'open', 'x'), undefined, checked), { code: 'UNSAFE_PATH' });
    assert.equal(checked.has(join(certs, 'open')), false);
  } finally {
    cleanup();
  }
});
