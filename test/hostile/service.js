// Hostile cases for the trust stores and the service (`trust`, `serve`): folders other users planted, special
// files, control characters. Attacker steps run as nobody in the case's world-writable sticky folder.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../helpers.js';
import { EXIT, asNobody } from './harness.js';

/** An NSS database made by nobody in the shared folder; `extra` runs after (as nobody) to tamper with it. */
function plantNssDb(ctx, extra = '') {
  asNobody('sh', ['-c', `mkdir ${ctx.public}/db && certutil -N -d sql:${ctx.public}/db --empty-password ${extra}`]);
}

/** An NSS database of ours in ctx.work/db. */
function ownNssDb(ctx) {
  const db = join(ctx.work, 'db');
  mkdirSync(db);
  const made = run('certutil', ['-N', '-d', `sql:${db}`, '--empty-password']);
  if (made.status !== 0) throw new Error(`certutil -N: ${made.stderr}`);
  return db;
}

export const CASES = [
  {
    title:
      'trust install --nss-db a database folder another user made in a shared folder (certutil would write where they point)',
    world: true,
    setup: (ctx) => plantNssDb(ctx, `&& ln -s ${ctx.work}/victim ${ctx.public}/db/cert9.db-journal`),
    args: (ctx) => ['trust', 'install', '--store', 'nss', '--nss-db', join(ctx.public, 'db')],
    status: EXIT.UNSAFE_PATH,
    code: 'UNSAFE_PATH',
    message: [/NSS database folder is owned by uid 65534/],
    hint: /chown|only this user/,
    json: true,
  },
  {
    title: 'trust uninstall --nss-db a database folder another user made in a shared folder',
    world: true,
    setup: (ctx) => plantNssDb(ctx),
    args: (ctx) => ['trust', 'uninstall', '--store', 'nss', '--nss-db', join(ctx.public, 'db')],
    status: EXIT.UNSAFE_PATH,
    code: 'UNSAFE_PATH',
    message: [/NSS database folder is owned by uid 65534/],
  },
  {
    title: 'trust install --nss-db our database folder left world-writable',
    setup: (ctx) => run('chmod', ['0777', ownNssDb(ctx)]),
    args: (ctx) => ['trust', 'install', '--store', 'nss', '--nss-db', join(ctx.work, 'db')],
    status: EXIT.UNSAFE_PATH,
    code: 'UNSAFE_PATH',
    message: [/NSS database folder is writable by everyone \(mode 0777\)/],
    hint: /chmod go-w/,
  },
  {
    title: 'trust install --nss-db a database whose cert9.db is a FIFO',
    setup: (ctx) => {
      const db = join(ctx.work, 'db');
      mkdirSync(db);
      run('mkfifo', [join(db, 'cert9.db')]);
    },
    args: (ctx) => ['trust', 'install', '--store', 'nss', '--nss-db', join(ctx.work, 'db')],
    status: [EXIT.INVALID_INPUT, EXIT.UNSAFE_PATH],
    message: [/cert9\.db|NSS database/],
    timeout: 20_000,
  },
];
