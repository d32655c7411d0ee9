// --json output written in pieces (src/cli/output.ts writeJsonPieces): the same text as
// JSON.stringify(data, null, 2) + '\n' for every shape a command emits, and more than one piece when it is large.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeJsonPieces } from '../dist/cli/output.js';

function pieces(data) {
  const out = [];
  writeJsonPieces(data, (text) => out.push(text));
  return out;
}

const item = (i) => ({
  name: `c${i}`,
  serial: i.toString(16).padStart(32, '0'),
  notAfter: new Date(Date.UTC(2027, 0, 1) + i * 1000),
  failures: i % 3,
  lastError: i % 7 === 0 ? 'line one\nline "two" \u2028 ✓' : null,
  nested: { deep: [1, { a: [] }, {}], gone: undefined, fn: () => 1 },
  ...(i % 5 === 0 ? { ariTime: undefined } : {}),
});

const shapes = {
  'a small object': { plan: [item(1), item(2)], crl: { due: false } },
  'a long array at the top of an object': { plan: Array.from({ length: 3000 }, (_, i) => item(i)) },
  'long arrays between other keys': {
    first: 'x',
    skipped: undefined,
    plan: Array.from({ length: 300 }, (_, i) => item(i)),
    empty: [],
    middle: { a: 1, b: [1, 2] },
    items: Array.from({ length: 257 }, (_, i) => (i % 4 === 0 ? undefined : i % 4 === 1 ? () => 1 : item(i))),
    last: null,
  },
  'an array of 256 strings and numbers': { values: Array.from({ length: 256 }, (_, i) => (i % 2 ? `v${i}` : i)) },
  'a top-level array': Array.from({ length: 1000 }, (_, i) => item(i)),
  'an object with toJSON': { toJSON: () => ({ plan: [1, 2, 3] }), plan: Array.from({ length: 500 }, () => 1) },
  'an object without a prototype': Object.assign(Object.create(null), { plan: Array.from({ length: 500 }, () => 2) }),
  'a string': 'text',
  null: null,
};

for (const [what, data] of Object.entries(shapes)) {
  test(`--json pieces: ${what} is written as JSON.stringify writes it`, () => {
    assert.equal(pieces(data).join(''), JSON.stringify(data, null, 2) + '\n');
  });
}

test('--json pieces: a 10,000-element plan is written in pieces of about 64 KB, not as one string', () => {
  const data = { plan: Array.from({ length: 10_000 }, (_, i) => item(i)), crl: null };
  const out = pieces(data);
  assert.equal(out.join(''), JSON.stringify(data, null, 2) + '\n');
  assert.ok(out.length > 20, `${out.length} pieces`);
  // the first run of elements is a guess, the next ones are sized from the one before; the last is what is left
  assert.ok(out[0].length < 80 * 1024, `first piece ${out[0].length}`);
  for (const piece of out.slice(1, -1))
    assert.ok(piece.length >= 56 * 1024 && piece.length < 72 * 1024, `${piece.length}`);
});
