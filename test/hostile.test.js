// Hostile input, one table-driven suite: the rows live in test/hostile/*.js (one file per area: names,
// options, files and folders, the CA and inventory, mcpki.yaml, templates, secrets, ACME, concurrency,
// special files) and run here through the real CLI. See test/hostile/harness.js for what a row asserts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './helpers.js';
import { checkJson, checkPlain, setUpSharedCas, tearDown } from './hostile/harness.js';

const folder = join(ROOT, 'test', 'hostile');
const files = readdirSync(folder)
  .filter((name) => name.endsWith('.js') && name !== 'harness.js')
  .sort();
const tables = await Promise.all(
  files.map(async (name) => ({ name, cases: (await import(join(folder, name))).CASES })),
);

before(setUpSharedCas);
after(tearDown);

test('the suite has at least 150 hostile cases', () => {
  const total = tables.reduce((sum, table) => sum + table.cases.length, 0);
  assert.ok(total >= 150, `${total} cases`);
});

for (const { name, cases } of tables) {
  describe(`hostile: ${name}`, () => {
    for (const row of cases) {
      test(row.title, { skip: row.skip }, () => {
        const { problems, where } = checkPlain(row);
        assert.deepEqual(problems, [], `${row.title}:${where}`);
      });
      if (row.json) {
        test(`${row.title} (--json)`, { skip: row.skip }, () => {
          const { problems, where } = checkJson(row);
          assert.deepEqual(problems, [], `${row.title} (--json):${where}`);
        });
      }
    }
  });
}
