// The renewal policy (issue 4): a pure function with an injected clock and randomness. A table of fixed cases
// (every expected value exact), parseRenewBefore, backoffDelay, and properties over many generated inputs.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { needsRenewal, parseRenewBefore, backoffDelay, failuresAfterRun } from '../dist/renewal/policy.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const MINUTE = 60_000;
const START = Date.parse('2026-01-01T00:00:00.000Z');
/** day d of a certificate issued at START */
const at = (d) => new Date(START + d * DAY);
const iso = (d) => at(d).toISOString();
const cert = (days, extra = {}) => ({ notBefore: iso(0), notAfter: iso(days), status: 'valid', ...extra });
const window = (from, to) => ({ windowStart: iso(from), windowEnd: iso(to) });
const half = () => 0.5;
const noRandom = () => {
  throw new Error('random must not be called here');
};

// expect: exact due/code/renewAt/nextCheck; ariTime exact or absent
const CASES = [
  // default fraction: 1/3 of a 90-day lifetime → due from day 60 (2026-03-02)
  {
    name: '90-day cert at day 10: not yet',
    input: { certificate: cert(90), now: at(10) },
    expect: { due: false, code: 'not-yet', renewAt: '2026-03-02T00:00:00.000Z', nextCheck: '2026-03-02T00:00:00.000Z' },
  },
  {
    name: '90-day cert at day 59: not yet',
    input: { certificate: cert(90), now: at(59) },
    expect: { due: false, code: 'not-yet', renewAt: '2026-03-02T00:00:00.000Z', nextCheck: '2026-03-02T00:00:00.000Z' },
  },
  {
    name: '90-day cert at day 60 exactly: due (boundary inclusive)',
    input: { certificate: cert(90), now: at(60) },
    expect: { due: true, code: 'fraction', renewAt: '2026-03-02T00:00:00.000Z', nextCheck: '2026-03-02T00:00:00.000Z' },
  },
  {
    name: '90-day cert at day 61: due',
    input: { certificate: cert(90), now: at(61) },
    expect: { due: true, code: 'fraction', renewAt: '2026-03-02T00:00:00.000Z', nextCheck: '2026-03-03T00:00:00.000Z' },
  },
  {
    name: '90-day cert at day 89: due',
    input: { certificate: cert(90), now: at(89) },
    expect: { due: true, code: 'fraction', renewAt: '2026-03-02T00:00:00.000Z', nextCheck: '2026-03-31T00:00:00.000Z' },
  },
  // short-lived: under 10 days renews at 1/2
  {
    name: '6-day cert at day 2: not yet (1/2 rule → day 3)',
    input: { certificate: cert(6), now: at(2) },
    expect: { due: false, code: 'not-yet', renewAt: '2026-01-04T00:00:00.000Z', nextCheck: '2026-01-04T00:00:00.000Z' },
  },
  {
    name: '6-day cert at day 3.5: due',
    input: { certificate: cert(6), now: at(3.5) },
    expect: { due: true, code: 'fraction', renewAt: '2026-01-04T00:00:00.000Z', nextCheck: '2026-01-04T12:00:00.000Z' },
  },
  {
    name: '10-day cert: 1/3 (not under 10 days)',
    input: { certificate: cert(10), now: at(6) },
    expect: { due: false, code: 'not-yet', renewAt: '2026-01-07T16:00:00.000Z', nextCheck: '2026-01-07T16:00:00.000Z' },
  },
  {
    name: '45-day cert at day 29: not yet (day 30)',
    input: { certificate: cert(45), now: at(29) },
    expect: { due: false, code: 'not-yet', renewAt: '2026-01-31T00:00:00.000Z', nextCheck: '2026-01-31T00:00:00.000Z' },
  },
  {
    name: '45-day cert at day 31: due',
    input: { certificate: cert(45), now: at(31) },
    expect: { due: true, code: 'fraction', renewAt: '2026-01-31T00:00:00.000Z', nextCheck: '2026-02-01T00:00:00.000Z' },
  },
  // ARI
  {
    name: 'ARI window in the future: the middle of it with random 0.5',
    input: { certificate: cert(90, { renewalInfo: window(60, 62) }), now: at(10), random: half },
    expect: {
      due: false,
      code: 'ari-wait',
      renewAt: '2026-03-03T00:00:00.000Z',
      nextCheck: '2026-03-03T00:00:00.000Z',
      ariTime: '2026-03-03T00:00:00.000Z',
    },
  },
  {
    name: 'ARI window in the future, stored chosen time kept (random unused)',
    input: {
      certificate: cert(90, { renewalInfo: window(60, 62) }),
      now: at(10),
      random: noRandom,
      chosenAriTime: '2026-03-02T06:00:00.000Z',
    },
    expect: {
      due: false,
      code: 'ari-wait',
      renewAt: '2026-03-02T06:00:00.000Z',
      nextCheck: '2026-03-02T06:00:00.000Z',
      ariTime: '2026-03-02T06:00:00.000Z',
    },
  },
  {
    name: 'ARI window current, nothing stored: drawn from the rest of the window',
    input: { certificate: cert(90, { renewalInfo: window(60, 62) }), now: at(61), random: half },
    expect: {
      due: false,
      code: 'ari-wait',
      renewAt: '2026-03-03T12:00:00.000Z',
      nextCheck: '2026-03-03T12:00:00.000Z',
      ariTime: '2026-03-03T12:00:00.000Z',
    },
  },
  {
    name: 'ARI window current, stored time passed: due',
    input: {
      certificate: cert(90, { renewalInfo: window(60, 62) }),
      now: at(61),
      random: noRandom,
      chosenAriTime: '2026-03-02T12:00:00.000Z',
    },
    expect: {
      due: true,
      code: 'ari-window',
      renewAt: '2026-03-02T12:00:00.000Z',
      nextCheck: '2026-03-03T00:00:00.000Z',
      ariTime: '2026-03-02T12:00:00.000Z',
    },
  },
  {
    name: 'ARI window in the past: due now',
    input: { certificate: cert(90, { renewalInfo: window(50, 52) }), now: at(55), random: half },
    expect: {
      due: true,
      code: 'ari-window',
      renewAt: '2026-02-25T00:00:00.000Z',
      nextCheck: '2026-02-25T00:00:00.000Z',
      ariTime: '2026-02-25T00:00:00.000Z',
    },
  },
  {
    name: 'ARI window moved earlier (incident): stored time outside it is redrawn',
    input: {
      certificate: cert(90, { renewalInfo: window(30, 32) }),
      now: at(20),
      random: half,
      chosenAriTime: iso(61),
    },
    expect: {
      due: false,
      code: 'ari-wait',
      renewAt: '2026-02-01T00:00:00.000Z',
      nextCheck: '2026-02-01T00:00:00.000Z',
      ariTime: '2026-02-01T00:00:00.000Z',
    },
  },
  {
    name: 'ARI later than the default fraction: ARI replaces it',
    input: { certificate: cert(90, { renewalInfo: window(70, 72) }), now: at(65), random: half },
    expect: {
      due: false,
      code: 'ari-wait',
      renewAt: '2026-03-13T00:00:00.000Z',
      nextCheck: '2026-03-13T00:00:00.000Z',
      ariTime: '2026-03-13T00:00:00.000Z',
    },
  },
  {
    name: 'ARI + renewBefore 45d (earlier): renewBefore wins, ARI time still stored',
    input: {
      certificate: cert(90, { renewalInfo: window(60, 62) }),
      renewBefore: parseRenewBefore('45d'),
      now: at(10),
      random: half,
    },
    expect: {
      due: false,
      code: 'not-yet',
      renewAt: '2026-02-15T00:00:00.000Z',
      nextCheck: '2026-02-15T00:00:00.000Z',
      ariTime: '2026-03-03T00:00:00.000Z',
    },
  },
  {
    name: 'ARI + renewBefore 10d (later): ARI wins',
    input: {
      certificate: cert(90, { renewalInfo: window(60, 62) }),
      renewBefore: parseRenewBefore('10d'),
      now: at(10),
      random: half,
    },
    expect: {
      due: false,
      code: 'ari-wait',
      renewAt: '2026-03-03T00:00:00.000Z',
      nextCheck: '2026-03-03T00:00:00.000Z',
      ariTime: '2026-03-03T00:00:00.000Z',
    },
  },
  {
    name: 'ARI window after notAfter: ignored, default fraction',
    input: { certificate: cert(90, { renewalInfo: window(95, 97) }), now: at(10), random: half },
    expect: { due: false, code: 'not-yet', renewAt: '2026-03-02T00:00:00.000Z', nextCheck: '2026-03-02T00:00:00.000Z' },
  },
  {
    name: 'ARI window reaching past notAfter: clipped at expiry',
    input: { certificate: cert(90, { renewalInfo: window(88, 100) }), now: at(10), random: half },
    expect: {
      due: false,
      code: 'ari-wait',
      renewAt: '2026-03-31T00:00:00.000Z',
      nextCheck: '2026-03-31T00:00:00.000Z',
      ariTime: '2026-03-31T00:00:00.000Z',
    },
  },
  // renewBefore
  {
    name: "renewBefore '30d' at day 61: due by renewBefore",
    input: { certificate: cert(90), renewBefore: parseRenewBefore('30d'), now: at(61) },
    expect: {
      due: true,
      code: 'renew-before',
      renewAt: '2026-03-02T00:00:00.000Z',
      nextCheck: '2026-03-03T00:00:00.000Z',
    },
  },
  {
    name: "renewBefore '20d' at day 65: not yet (day 70, later than the default)",
    input: { certificate: cert(90), renewBefore: parseRenewBefore('20d'), now: at(65) },
    expect: { due: false, code: 'not-yet', renewAt: '2026-03-12T00:00:00.000Z', nextCheck: '2026-03-12T00:00:00.000Z' },
  },
  {
    name: "renewBefore '1/3' on a 6-day cert overrides the 1/2 default",
    input: { certificate: cert(6), renewBefore: parseRenewBefore('1/3'), now: at(3.5) },
    expect: { due: false, code: 'not-yet', renewAt: '2026-01-05T00:00:00.000Z', nextCheck: '2026-01-05T00:00:00.000Z' },
  },
  {
    name: "renewBefore '25%' at day 61: not yet (day 67.5)",
    input: { certificate: cert(90), renewBefore: parseRenewBefore('25%'), now: at(61) },
    expect: { due: false, code: 'not-yet', renewAt: '2026-03-09T12:00:00.000Z', nextCheck: '2026-03-09T12:00:00.000Z' },
  },
  {
    name: "renewBefore '0.5' at day 46: due by fraction",
    input: { certificate: cert(90), renewBefore: parseRenewBefore('0.5'), now: at(46) },
    expect: { due: true, code: 'fraction', renewAt: '2026-02-15T00:00:00.000Z', nextCheck: '2026-02-16T00:00:00.000Z' },
  },
  // shortened lifetime: asked 90 days, the CA gave 7
  {
    name: 'asked 90 got 7, renewBefore 30d, just issued: not due (no loop)',
    input: { certificate: cert(7), requestedDays: 90, renewBefore: parseRenewBefore('30d'), now: at(0.01) },
    expect: {
      due: false,
      code: 'shortened-lifetime',
      renewAt: '2026-01-04T12:00:00.000Z',
      nextCheck: '2026-01-04T12:00:00.000Z',
    },
  },
  {
    name: 'asked 90 got 7, renewBefore 30d, day 4: due by the 1/2 fallback',
    input: { certificate: cert(7), requestedDays: 90, renewBefore: parseRenewBefore('30d'), now: at(4) },
    expect: {
      due: true,
      code: 'shortened-lifetime',
      renewAt: '2026-01-04T12:00:00.000Z',
      nextCheck: '2026-01-05T00:00:00.000Z',
    },
  },
  {
    name: 'asked 90 got 7, no renewBefore: fraction of the actual lifetime',
    input: { certificate: cert(7), requestedDays: 90, now: at(1) },
    expect: { due: false, code: 'not-yet', renewAt: '2026-01-04T12:00:00.000Z', nextCheck: '2026-01-04T12:00:00.000Z' },
  },
  {
    name: 'renewBefore equal to the lifetime (7d of 7): fallback',
    input: { certificate: cert(7), renewBefore: parseRenewBefore('7d'), now: at(1) },
    expect: {
      due: false,
      code: 'shortened-lifetime',
      renewAt: '2026-01-04T12:00:00.000Z',
      nextCheck: '2026-01-04T12:00:00.000Z',
    },
  },
  {
    name: 'renewBefore just under the lifetime (6d of 7): honoured',
    input: { certificate: cert(7), renewBefore: parseRenewBefore('6d'), now: at(0.5) },
    expect: { due: false, code: 'not-yet', renewAt: '2026-01-02T00:00:00.000Z', nextCheck: '2026-01-02T00:00:00.000Z' },
  },
  {
    name: 'asked 90 got 7 with ARI and renewBefore 30d: ARI decides',
    input: {
      certificate: cert(7, { renewalInfo: window(4, 5) }),
      requestedDays: 90,
      renewBefore: parseRenewBefore('30d'),
      now: at(1),
      random: half,
    },
    expect: {
      due: false,
      code: 'ari-wait',
      renewAt: '2026-01-05T12:00:00.000Z',
      nextCheck: '2026-01-05T12:00:00.000Z',
      ariTime: '2026-01-05T12:00:00.000Z',
    },
  },
  // status and absence
  {
    name: 'missing: due now',
    input: { certificate: null, now: at(3) },
    expect: { due: true, code: 'missing', renewAt: '2026-01-04T00:00:00.000Z', nextCheck: '2026-01-04T00:00:00.000Z' },
  },
  {
    name: 'revoked at day 10: due now',
    input: { certificate: cert(90, { status: 'revoked' }), now: at(10) },
    expect: { due: true, code: 'revoked', renewAt: '2026-01-11T00:00:00.000Z', nextCheck: '2026-01-11T00:00:00.000Z' },
  },
  {
    name: 'expired at day 95: due, due since the fraction time',
    input: { certificate: cert(90), now: at(95) },
    expect: { due: true, code: 'expired', renewAt: '2026-03-02T00:00:00.000Z', nextCheck: '2026-04-06T00:00:00.000Z' },
  },
  {
    name: 'superseded (even expired): never due',
    input: { certificate: cert(90, { status: 'superseded' }), now: at(95) },
    expect: { due: false, code: 'not-yet', renewAt: '2026-04-01T00:00:00.000Z', nextCheck: '2026-04-01T00:00:00.000Z' },
  },
  // backoff: the jitter comes from (lastAt, count), exact retry times; bounds checked below as well
  {
    name: 'backoff after 1 failure (~5 min)',
    input: {
      certificate: cert(90),
      now: new Date(at(61).getTime() + MINUTE),
      failures: { count: 1, lastAt: iso(61), lastError: 'connection refused' },
    },
    expect: { due: false, code: 'backoff', renewAt: '2026-03-03T00:05:53.074Z', nextCheck: '2026-03-03T00:05:53.074Z' },
  },
  {
    name: 'backoff after 3 failures (~20 min)',
    input: { certificate: cert(90), now: new Date(at(61).getTime() + MINUTE), failures: { count: 3, lastAt: iso(61) } },
    expect: { due: false, code: 'backoff', renewAt: '2026-03-03T00:23:28.546Z', nextCheck: '2026-03-03T00:23:28.546Z' },
  },
  {
    name: 'backoff after 10 failures (capped ~6 h)',
    input: {
      certificate: cert(90),
      now: new Date(at(61).getTime() + MINUTE),
      failures: { count: 10, lastAt: iso(61) },
    },
    expect: { due: false, code: 'backoff', renewAt: '2026-03-03T05:21:30.481Z', nextCheck: '2026-03-03T05:21:30.481Z' },
  },
  {
    name: 'backoff over: due again',
    input: { certificate: cert(90), now: new Date(at(61).getTime() + HOUR), failures: { count: 3, lastAt: iso(61) } },
    expect: { due: true, code: 'fraction', renewAt: '2026-03-02T00:00:00.000Z', nextCheck: '2026-03-03T01:00:00.000Z' },
  },
  {
    name: 'backoff after expiry: waits…',
    input: { certificate: cert(90), now: at(95), failures: { count: 10, lastAt: iso(94.9) } },
    expect: { due: false, code: 'backoff', renewAt: '2026-04-06T04:40:35.657Z', nextCheck: '2026-04-06T04:40:35.657Z' },
  },
  {
    name: '…and still retries after expiry',
    input: {
      certificate: cert(90),
      now: new Date(at(95).getTime() + 8 * HOUR),
      failures: { count: 10, lastAt: iso(94.9) },
    },
    expect: { due: true, code: 'expired', renewAt: '2026-03-02T00:00:00.000Z', nextCheck: '2026-04-06T08:00:00.000Z' },
  },
  {
    name: 'backoff never passes expiry: retry at notAfter',
    input: { certificate: cert(90), now: at(89.99), failures: { count: 10, lastAt: iso(89.98) } },
    expect: { due: false, code: 'backoff', renewAt: '2026-04-01T00:00:00.000Z', nextCheck: '2026-04-01T00:00:00.000Z' },
  },
  {
    name: 'failures on a certificate that is not due: no backoff shown',
    input: { certificate: cert(90), now: at(10), failures: { count: 4, lastAt: iso(9.99) } },
    expect: { due: false, code: 'not-yet', renewAt: '2026-03-02T00:00:00.000Z', nextCheck: '2026-03-02T00:00:00.000Z' },
  },
  {
    name: 'missing with a failure: backoff too',
    input: { certificate: null, now: new Date(START + MINUTE), failures: { count: 2, lastAt: iso(0) } },
    expect: { due: false, code: 'backoff', renewAt: '2026-01-01T00:08:10.676Z', nextCheck: '2026-01-01T00:08:10.676Z' },
  },
  {
    name: 'revoked with a failure: backoff too',
    input: {
      certificate: cert(90, { status: 'revoked' }),
      now: new Date(at(10).getTime() + MINUTE),
      failures: { count: 1, lastAt: iso(10) },
    },
    expect: { due: false, code: 'backoff', renewAt: '2026-01-11T00:04:35.271Z', nextCheck: '2026-01-11T00:04:35.271Z' },
  },
  // a changed declaration (names, issuer, kind, key) is due at once, and backs off like any failure (issue 8, item 25)
  {
    name: 'changed declaration: due now',
    input: { certificate: cert(90), now: at(10), changed: 'names changed (dns:a.test → dns:b.test)' },
    expect: { due: true, code: 'changed', renewAt: '2026-01-11T00:00:00.000Z', nextCheck: '2026-01-11T00:00:00.000Z' },
  },
  {
    name: 'changed declaration after a failed reissue: backs off',
    input: {
      certificate: cert(90),
      now: new Date(at(10).getTime() + MINUTE),
      changed: 'names changed',
      failures: { count: 1, lastAt: iso(10) },
    },
    expect: { due: false, code: 'backoff', renewAt: '2026-01-11T00:04:35.271Z', nextCheck: '2026-01-11T00:04:35.271Z' },
  },
  {
    name: 'changed declaration, backoff over: due again, next check now',
    input: {
      certificate: cert(90),
      now: new Date(at(10).getTime() + HOUR),
      changed: 'names changed',
      failures: { count: 1, lastAt: iso(10) },
    },
    expect: { due: true, code: 'changed', renewAt: '2026-01-11T01:00:00.000Z', nextCheck: '2026-01-11T01:00:00.000Z' },
  },
  {
    name: 'changed declaration of a revoked certificate: revoked',
    input: { certificate: cert(90, { status: 'revoked' }), now: at(10), changed: 'names changed' },
    expect: { due: true, code: 'revoked', renewAt: '2026-01-11T00:00:00.000Z', nextCheck: '2026-01-11T00:00:00.000Z' },
  },
];

describe('needsRenewal: table', () => {
  assert.ok(CASES.length >= 20);
  for (const { name, input, expect } of CASES) {
    test(name, () => {
      const decision = needsRenewal({ random: noRandom, ...input });
      const { reason, ...rest } = decision;
      assert.deepEqual(rest, expect);
      assert.equal(typeof reason, 'string');
      assert.ok(reason.length > 0 && !/[\r\n]/.test(reason), `one-line reason: ${reason}`);
      if (decision.code === 'backoff') {
        // independent of the exact draw: lastAt + 5 min × 2^(n−1) (cap 6 h) ± 20 %, or notAfter when that is sooner
        const waited = Date.parse(decision.renewAt) - Date.parse(input.failures.lastAt);
        const nominal = Math.min(6 * HOUR, 5 * MINUTE * 2 ** (input.failures.count - 1));
        const clamped = input.certificate && decision.renewAt === input.certificate.notAfter;
        assert.ok(
          clamped || (waited >= nominal * 0.8 && waited <= nominal * 1.2),
          `backoff ${waited} ms for ${input.failures.count} failures`,
        );
      }
    });
  }
});

test('reasons say why', () => {
  const shortened = needsRenewal({
    certificate: cert(7),
    requestedDays: 90,
    renewBefore: parseRenewBefore('30d'),
    now: at(1),
  });
  assert.match(shortened.reason, /7-day lifetime \(asked 90 days\)/);
  assert.match(shortened.reason, /renewBefore 30d is not shorter than the lifetime/);
  const backoff = needsRenewal({
    certificate: cert(90),
    now: new Date(at(61).getTime() + MINUTE),
    failures: { count: 3, lastAt: iso(61), lastError: 'rateLimited:\n too many' },
  });
  assert.match(backoff.reason, /after 3 failures.*\(rateLimited: too many\)/);
  assert.match(needsRenewal({ certificate: cert(90), now: at(95) }).reason, /^expired at 2026-04-01T00:00:00.000Z/);
  assert.match(needsRenewal({ certificate: cert(6), now: at(4) }).reason, /1\/2 of the 6-day lifetime/);
});

test('the ARI choice is stable once stored, whatever random draws next', () => {
  const certificate = cert(90, { renewalInfo: window(60, 62) });
  const first = needsRenewal({ certificate, now: at(10), random: () => 0.123 });
  assert.equal(first.ariTime, new Date(at(60).getTime() + Math.round(0.123 * 2 * DAY)).toISOString());
  for (const r of [0, 0.5, 0.999]) {
    for (const d of [11, 30, 59.9]) {
      const later = needsRenewal({ certificate, now: at(d), random: () => r, chosenAriTime: first.ariTime });
      assert.equal(later.ariTime, first.ariTime);
      assert.equal(later.renewAt, first.ariTime);
    }
  }
});

test('backoff is stable between checks (does not depend on random)', () => {
  const base = {
    certificate: cert(90),
    now: new Date(at(61).getTime() + MINUTE),
    failures: { count: 5, lastAt: iso(61) },
  };
  const a = needsRenewal({ ...base, random: () => 0 });
  const b = needsRenewal({ ...base, random: () => 0.99, now: new Date(at(61).getTime() + 30 * MINUTE) });
  assert.equal(a.code, 'backoff');
  assert.equal(a.nextCheck, b.nextCheck);
});

describe('parseRenewBefore', () => {
  const GOOD = [
    ['30d', { type: 'duration', ms: 30 * DAY }],
    ['12h', { type: 'duration', ms: 12 * HOUR }],
    [' 2w ', { type: 'duration', ms: 14 * DAY }],
    ['90m', { type: 'duration', ms: 90 * MINUTE }],
    ['1/3', { type: 'fraction', fraction: 1 / 3 }],
    ['2 / 3', { type: 'fraction', fraction: 2 / 3 }],
    ['0.25', { type: 'fraction', fraction: 0.25 }],
    ['.5', { type: 'fraction', fraction: 0.5 }],
    ['33%', { type: 'fraction', fraction: 0.33 }],
    ['12.5%', { type: 'fraction', fraction: 0.125 }],
  ];
  for (const [text, expected] of GOOD)
    test(`accepts ${JSON.stringify(text)}`, () => assert.deepEqual(parseRenewBefore(text), expected));
  const BAD = [
    '',
    '   ',
    '30',
    '0d',
    '-5d',
    '30 days',
    '30D',
    'abc',
    '1/0',
    '3/2',
    '1/1',
    '0/3',
    '100%',
    '0%',
    '150%',
    '1.5',
    '0.0',
    '1.0',
    '1/3d',
    '%',
    '1e400d',
    '9'.repeat(400) + 'd',
  ];
  for (const text of BAD) {
    test(`refuses ${JSON.stringify(text.length > 20 ? text.slice(0, 20) + '…' : text)}`, () => {
      assert.throws(
        () => parseRenewBefore(text),
        (error) => {
          assert.equal(error.name, 'McpkiError');
          assert.equal(error.code, 'INVALID_INPUT');
          assert.match(error.message, /renewBefore/);
          assert.match(error.hint, /30d.*1\/3/);
          return true;
        },
      );
    });
  }
  test('needsRenewal takes renewBefore parsed, and refuses a parsed value out of range or text', () => {
    for (const bad of [
      { type: 'fraction', fraction: 1.5 },
      { type: 'fraction', fraction: 0 },
      { type: 'duration', ms: -1 },
      { type: 'duration', ms: Number.NaN },
      '30d',
    ]) {
      assert.throws(
        () => needsRenewal({ certificate: cert(90), renewBefore: bad, now: at(1) }),
        { code: 'INVALID_INPUT' },
        JSON.stringify(bad),
      );
    }
  });
  test('reasons name the parsed renewBefore in its shortest form', () => {
    assert.match(
      needsRenewal({ certificate: cert(90), renewBefore: { type: 'duration', ms: 30 * DAY }, now: at(61) }).reason,
      /renewBefore 30d before expiry/,
    );
    assert.match(
      needsRenewal({ certificate: cert(90), renewBefore: { type: 'fraction', fraction: 0.25 }, now: at(61) }).reason,
      /when 25% of the 90-day lifetime remains/,
    );
  });
  test('bad dates throw INVALID_INPUT', () => {
    assert.throws(() => needsRenewal({ certificate: { ...cert(90), notAfter: 'soon' }, now: at(1) }), {
      code: 'INVALID_INPUT',
    });
    assert.throws(() => needsRenewal({ certificate: { ...cert(90), notAfter: iso(0) }, now: at(1) }), {
      code: 'INVALID_INPUT',
    });
    assert.throws(() => needsRenewal({ certificate: cert(90), now: new Date('x') }), { code: 'INVALID_INPUT' });
    assert.throws(
      () => needsRenewal({ certificate: cert(90), now: at(61), failures: { count: 1, lastAt: 'yesterday' } }),
      { code: 'INVALID_INPUT' },
    );
    assert.throws(() => needsRenewal({ certificate: cert(90, { renewalInfo: window(62, 60) }), now: at(1) }), {
      code: 'INVALID_INPUT',
    });
  });
});

describe('backoffDelay', () => {
  test('exact values at the middle draw: 5 min doubling, capped at 6 h', () => {
    const minutes = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 50, 1e6].map((n) => backoffDelay(n, half) / MINUTE);
    assert.deepEqual(minutes, [0, 5, 10, 20, 40, 80, 160, 320, 360, 360, 360, 360, 360]);
  });
  test('jitter bounds: ±20 % at the extremes', () => {
    assert.equal(
      backoffDelay(1, () => 0),
      4 * MINUTE,
    );
    assert.equal(
      backoffDelay(1, () => 1),
      6 * MINUTE,
    );
    assert.equal(
      backoffDelay(20, () => 1),
      7.2 * HOUR,
    );
    assert.equal(
      backoffDelay(20, () => 0),
      4.8 * HOUR,
    );
  });
  test('monotone up to the cap and within jitter bounds over many draws', () => {
    let seed = 42;
    const rng = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    for (let i = 0; i < 2000; i++) {
      const r = rng();
      let previous = 0;
      for (let n = 1; n <= 15; n++) {
        const delay = backoffDelay(n, () => r);
        const nominal = Math.min(6 * HOUR, 5 * MINUTE * 2 ** (n - 1));
        assert.ok(delay >= previous, `monotone at n=${n}, r=${r}`);
        assert.ok(
          delay >= Math.floor(nominal * 0.8) && delay <= Math.ceil(nominal * 1.2),
          `bounds at n=${n}, r=${r}: ${delay}`,
        );
        assert.ok(delay <= 7.2 * HOUR);
        previous = delay;
      }
    }
  });
});

describe('properties over generated inputs', () => {
  let seed = 7;
  const rng = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const lifetimes = [1, 2, 6, 7, 9.99, 10, 45, 90, 398];
  const renewBefores = [undefined, '30d', '12h', '1/3', '25%', '0.9', '400d', '1h'].map(
    (text) => text && parseRenewBefore(text),
  );
  const inputs = [];
  for (let i = 0; i < 3000; i++) {
    const days = lifetimes[Math.floor(rng() * lifetimes.length)];
    const renewalInfo = rng() < 0.4 ? window(rng() * days * 1.2, 0) : null;
    if (renewalInfo)
      renewalInfo.windowEnd = new Date(Date.parse(renewalInfo.windowStart) + (0.01 + rng() * 3) * DAY).toISOString();
    const now = at(rng() * days * 1.1);
    const failures =
      rng() < 0.3
        ? { count: 1 + Math.floor(rng() * 12), lastAt: new Date(now.getTime() - rng() * 8 * HOUR).toISOString() }
        : undefined;
    const draw = rng();
    inputs.push({
      certificate: cert(days, { renewalInfo }),
      renewBefore: renewBefores[Math.floor(rng() * renewBefores.length)],
      requestedDays: rng() < 0.5 ? 90 : undefined,
      failures,
      now,
      random: () => draw,
    });
  }
  test('renewAt ≤ notAfter for valid (unexpired) certificates', () => {
    let checked = 0;
    for (const input of inputs) {
      if (input.now.getTime() >= Date.parse(input.certificate.notAfter)) continue;
      checked++;
      const decision = needsRenewal(input);
      assert.ok(
        Date.parse(decision.renewAt) <= Date.parse(input.certificate.notAfter),
        JSON.stringify({ input, decision }),
      );
    }
    assert.ok(checked > 2000);
  });
  test('due → nextCheck = now and renewAt ≤ now; not due → nextCheck = renewAt > now', () => {
    for (const input of inputs) {
      const decision = needsRenewal(input);
      const now = input.now.getTime();
      if (decision.due) {
        assert.ok(Date.parse(decision.nextCheck) <= now);
        assert.equal(decision.nextCheck, input.now.toISOString());
        assert.ok(Date.parse(decision.renewAt) <= now);
      } else {
        assert.equal(decision.nextCheck, decision.renewAt);
        assert.ok(Date.parse(decision.renewAt) > now, JSON.stringify({ input, decision }));
      }
    }
  });
  test('a freshly issued certificate is never due (no renewal loop), whatever renewBefore', () => {
    for (const input of inputs) {
      const fresh = {
        ...input,
        now: new Date(Date.parse(input.certificate.notBefore) + 1000),
        failures: undefined,
        certificate: { ...input.certificate, renewalInfo: null },
      };
      const decision = needsRenewal(fresh);
      assert.equal(decision.due, false, JSON.stringify({ fresh, decision }));
    }
  });
  test('storing ariTime and asking again gives the same decision', () => {
    for (const input of inputs) {
      const first = needsRenewal(input);
      if (!first.ariTime) continue;
      const again = needsRenewal({ ...input, random: noRandom, chosenAriTime: first.ariTime });
      assert.deepEqual(again, first);
    }
  });
});

describe('failures between runs (issue 8, item 24)', () => {
  const now = (d) => at(d);
  test('a failure counts one more; a run skipped for backoff keeps the record; a success clears it', () => {
    const first = failuresAfterRun(undefined, { backingOff: false, error: 'connection refused', now: now(61) });
    assert.deepEqual(first, { count: 1, lastAt: iso(61), lastError: 'connection refused' });
    const skipped = failuresAfterRun(first, { backingOff: true, now: new Date(at(61).getTime() + MINUTE) });
    assert.deepEqual(skipped, first, 'a skipped run is not a success');
    const skippedAgain = failuresAfterRun(skipped, { backingOff: true, now: new Date(at(61).getTime() + 2 * MINUTE) });
    assert.deepEqual(skippedAgain, first);
    const second = failuresAfterRun(skippedAgain, {
      backingOff: false,
      error: 'rate limited',
      now: new Date(at(61).getTime() + HOUR),
    });
    assert.deepEqual(second, {
      count: 2,
      lastAt: new Date(at(61).getTime() + HOUR).toISOString(),
      lastError: 'rate limited',
    });
    assert.deepEqual(failuresAfterRun(second, { backingOff: false, now: at(62) }), {
      count: 0,
      lastAt: null,
      lastError: null,
    });
  });

  test('checks during a backoff never make a due certificate current, and the backoff grows with each failure', () => {
    for (const status of ['valid', 'revoked']) {
      const certificate = cert(90, { status });
      let record = failuresAfterRun(undefined, { backingOff: false, error: 'boom', now: at(61) });
      let previousWait = 0;
      let t = at(61).getTime();
      for (let round = 1; round <= 6; round++) {
        // checks every minute until the retry time: each one is a backoff that keeps the record
        for (;;) {
          t += MINUTE;
          const decision = needsRenewal({
            certificate,
            now: new Date(t),
            failures: { count: record.count, lastAt: record.lastAt, lastError: record.lastError },
          });
          if (decision.due) {
            assert.equal(decision.code, status === 'revoked' ? 'revoked' : 'fraction');
            assert.equal(decision.nextCheck, new Date(t).toISOString(), 'due: next check is now');
            break;
          }
          assert.equal(decision.code, 'backoff', `${status}: never current while due (round ${round})`);
          assert.doesNotMatch(decision.reason, /revoked: revoked/);
          if (status === 'revoked') assert.match(decision.reason, /revoked/);
          record = failuresAfterRun(record, { backingOff: true, now: new Date(t) });
          assert.equal(record.count, round, 'kept through skipped runs');
        }
        const wait = t - Date.parse(record.lastAt);
        assert.ok(wait >= previousWait, `round ${round}: ${wait} ms after ${previousWait} ms`);
        previousWait = wait;
        record = failuresAfterRun(record, { backingOff: false, error: 'boom again', now: new Date(t) });
      }
      assert.equal(record.count, 7);
    }
  });
});
