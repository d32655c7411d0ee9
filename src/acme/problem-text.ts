// What an ACME problem means to the user: one line naming the problem and the value, and one naming the fix,
// and the McpkiError that carries the problem.
import { McpkiError, fix, type Hint } from '../errors.js';
import { TRANSIENT_NETWORK_CODES } from './http.js';
import { errorCodeFor, isRetryable, oneLine, type AcmeProblem } from './problems.js';

const CHALLENGE_PORT: Record<string, number> = { 'http-01': 80, 'tls-alpn-01': 443 };

function txtName(domain: string): string {
  return `_acme-challenge.${domain.replace(/^\*\./, '')}`;
}

function serverOf(url: string | undefined): string {
  if (!url) return 'the ACME server';
  try {
    return `the ACME server ${new URL(url).host}`;
  } catch {
    return 'the ACME server';
  }
}

/** The port the CA connected to: the one in the URL its detail names (http://name:PORT/…), else the standard one. */
function validationPort(detail: string, challenge: string): number | undefined {
  const url = /\bhttps?:\/\/[^\s/"']+:(\d{1,5})\//.exec(detail) ?? /\bdial tcp [^\s]+:(\d{1,5})\b/.exec(detail);
  const port = url ? Number(url[1]) : undefined;
  return port !== undefined && port > 0 && port <= 65535 ? port : CHALLENGE_PORT[challenge];
}

function describeChallengeProblem(
  problem: AcmeProblem,
  domain: string,
  challenge: string,
  detail: string,
): { message: string; hint: Hint } | undefined {
  const prefix = `${challenge} challenge for ${domain} failed: `;
  const port = validationPort(detail, challenge);
  const bare = domain.replace(/^\*\./, '');
  const check = problem.origin === 'local' ? 'this machine' : 'the CA';
  // where our responder listened, when that is not where the CA connected
  const local =
    problem.localPort !== undefined && problem.localPort !== port
      ? ` (the responder here listened on port ${problem.localPort})`
      : '';
  const forward =
    problem.localPort !== undefined && problem.localPort !== port
      ? `forward port ${port} to port ${problem.localPort}`
      : `NAT forwarding to --http-port`;
  if (challenge === 'dns-01' && ['dns', 'incorrectResponse', 'unauthorized', 'connection'].includes(problem.name)) {
    return {
      message: `${prefix}TXT record ${txtName(domain)} not visible to ${check}: ${detail}`,
      hint: fix(
        `make {--dns-hook} set the record in the zone the public name servers serve, check with "dig TXT ${txtName(domain)} @<authoritative server>", and give it time to propagate`,
      ),
    };
  }
  if (challenge === 'http-01' && (problem.name === 'connection' || problem.name === 'dns')) {
    return {
      message: `${prefix}port ${port} of ${bare} was not reachable from ${check}${local}: ${detail}`,
      hint: fix(
        `${bare} must resolve to this machine (A/AAAA) and port ${port} must be open to the internet (firewall, ${forward}); or use {--challenge dns-01|challenge: dns-01}`,
      ),
    };
  }
  if (challenge === 'http-01' && (problem.name === 'unauthorized' || problem.name === 'incorrectResponse')) {
    return {
      message: `${prefix}port ${port} of ${bare} did not serve the expected /.well-known/acme-challenge/ file to ${check}${local}: ${detail}`,
      hint: fix(
        `another server may answer port ${port} of ${bare}: stop it, give its document root with {--webroot}, or fix redirects; or use {--challenge dns-01|challenge: dns-01}`,
      ),
    };
  }
  if (challenge === 'http-01' && problem.name === 'tls') {
    return {
      message: `${prefix}port ${port} of ${bare} redirected to HTTPS and the TLS handshake failed: ${detail}`,
      hint: `do not redirect /.well-known/acme-challenge/ to HTTPS, or make the HTTPS server on ${bare} complete a handshake`,
    };
  }
  if (
    challenge === 'tls-alpn-01' &&
    ['connection', 'dns', 'tls', 'unauthorized', 'incorrectResponse'].includes(problem.name)
  ) {
    const what =
      problem.name === 'connection' || problem.name === 'dns'
        ? `port ${port} of ${bare} was not reachable from ${check}`
        : `port ${port} of ${bare} did not present the acme-tls/1 challenge certificate to ${check}`;
    return {
      message: `${prefix}${what}: ${detail}`,
      hint: fix(
        `port 443 of ${bare} must reach the {--alpn-port} responder directly (no TLS-terminating proxy in front); or use {--challenge http-01|challenge: http-01} or dns-01`,
      ),
    };
  }
  if (problem.name === 'caa') {
    return {
      message: `${prefix}CAA records of ${bare} do not allow this CA: ${detail}`,
      hint: `add a CAA record for ${bare} that names this CA (issue/issuewild), or remove the one that excludes it`,
    };
  }
  return undefined;
}

/** One line naming the problem and one line naming the fix. */
export function describeProblem(problem: AcmeProblem): { message: string; hint: Hint } {
  const detail = oneLine(problem.detail, 240) || 'no detail';
  const domain = problem.identifier?.value;
  const challenge = problem.challengeType;
  const who = domain ?? 'the domain';
  if (challenge && domain) {
    const described = describeChallengeProblem(problem, domain, challenge, detail);
    if (described) return described;
  }
  if (
    problem.operation === 'account' &&
    /external account|\beab\b/i.test(detail) &&
    problem.name !== 'externalAccountRequired'
  ) {
    return {
      message: `the CA refused the External Account Binding: ${detail}`,
      hint: fix(
        'check the EAB key id ({--eab-kid}) and its HMAC key ({--eab-hmac-file} or MCPKI_EAB_HMAC, base64url, exactly as the CA shows it); some CAs accept each EAB key only once: create a new one',
      ),
    };
  }
  const prefix = challenge
    ? `${challenge} challenge${domain ? ` for ${domain}` : ''} failed: `
    : domain
      ? `${domain}: `
      : '';
  const until = problem.retryAfter ? problem.retryAfter.toISOString().replace(/\.\d{3}Z$/, 'Z') : undefined;
  switch (problem.name) {
    case 'rateLimited':
      return {
        message: until ? `rate limited by the CA until ${until}: ${detail}` : `rate limited by the CA: ${detail}`,
        hint: until
          ? fix(
              `wait until ${until} before trying again; test against a staging directory (e.g. {--directory} letsencrypt-staging)`,
            )
          : fix(
              'wait before trying again (see the detail); test against a staging directory (e.g. {--directory} letsencrypt-staging)',
            ),
      };
    case 'badNonce':
      return {
        message: `the CA kept rejecting the request's anti-replay nonce: ${detail}`,
        hint: 'a temporary condition: try again',
      };
    case 'externalAccountRequired':
      return {
        message: `this CA requires External Account Binding: ${detail}`,
        hint: fix('pass {--eab-kid} and {--eab-hmac-file} with the key ID and HMAC key from your account at the CA'),
      };
    case 'accountDoesNotExist':
      return {
        message: `the ACME account does not exist on this CA: ${detail}`,
        hint: 'register one with "mcpki acme account register" (the CA may have deleted or deactivated it)',
      };
    case 'alreadyRevoked':
      return { message: `the certificate is already revoked: ${detail}`, hint: 'nothing left to revoke' };
    case 'badRevocationReason':
      return {
        message: `the CA does not accept this revocation reason: ${detail}`,
        hint: fix(
          'choose another {--reason}: CAs commonly accept unspecified, keyCompromise, affiliationChanged, superseded and cessationOfOperation',
        ),
      };
    case 'alreadyReplaced':
      return {
        message: `the certificate this order replaces was already replaced by another order: ${detail}`,
        hint: 'order again without "replaces" (the renewal was already done once)',
      };
    case 'invalidProfile':
      return {
        message: `the CA rejected the certificate profile: ${detail}`,
        hint: fix('choose one of the profiles the directory lists (meta.profiles), or drop {--profile}'),
      };
    case 'caa':
      return {
        message: `${prefix}CAA records of ${who} do not allow this CA: ${detail}`,
        hint: `add a CAA record for ${who} that names this CA (issue/issuewild), or remove the one that excludes it`,
      };
    case 'connection':
      return {
        message: `${prefix}the CA could not connect to ${who}: ${detail}`,
        hint: fix(
          `${who} must be reachable from the internet on the challenge's port; or use {--challenge dns-01|challenge: dns-01}`,
        ),
      };
    case 'dns':
      return {
        message: `${prefix}the CA could not resolve ${who}: ${detail}`,
        hint: `${who} needs public DNS records (A/AAAA for http-01 and tls-alpn-01, a TXT record for dns-01); check the name and its name servers`,
      };
    case 'tls':
      return {
        message: `${prefix}TLS error between the CA and ${who}: ${detail}`,
        hint: 'for http-01 do not redirect to a broken HTTPS site; for tls-alpn-01 port 443 must answer acme-tls/1',
      };
    case 'incorrectResponse':
      return {
        message: `${prefix}the CA received a wrong challenge response from ${who}: ${detail}`,
        hint: 'another server or an old record answers the challenge: check what port 80/443 or the TXT record serves',
      };
    case 'unauthorized':
      return {
        message: `${prefix}the CA refused: ${detail}`,
        hint: challenge
          ? 'the challenge response was not accepted: check that it is served to the internet'
          : problem.operation === 'revoke'
            ? fix(
                'the account may not do this: check {--account} (only the account that ordered a certificate, or its key, can revoke it)',
              )
            : problem.operation === 'account'
              ? fix(
                  'the CA refused to create or use this account: check {--directory} and, for a CA that requires it, the EAB key ({--eab-kid}, {--eab-hmac-file})',
                )
              : fix(
                  'the account may not do this: check {--account} and that it is valid at this CA (mcpki acme account show NAME)',
                ),
      };
    case 'rejectedIdentifier':
    case 'compound': {
      const subs = problem.subproblems;
      if (subs.length > 0) {
        const list = subs
          .map((s) => `${s.identifier?.value ?? '?'} (${s.name}${s.detail ? `: ${oneLine(s.detail, 80)}` : ''})`)
          .join('; ');
        const rejected = subs.filter((s) => s.identifier).map((s) => s.identifier!.value);
        return {
          message: `the CA refused ${subs.length === 1 ? 'one identifier' : `${subs.length} identifiers`}: ${list}`,
          hint: rejected.length
            ? `remove ${rejected.join(', ')} from -d, or use the local CA (mcpki issue) for internal names`
            : 'see the detail of each identifier',
        };
      }
      return {
        message: `the CA will not issue for ${who}: ${detail}`,
        hint: "the CA's policy refuses this name (public suffix, blocked or non-public name): remove it from -d, or use the local CA (mcpki issue) for internal names",
      };
    }
    case 'unsupportedIdentifier':
      return {
        message: `this CA does not issue for ${who}: ${detail}`,
        hint: 'use DNS names; IP address certificates need a CA that supports them (RFC 8738)',
      };
    case 'malformed':
      return {
        message: `${prefix}the CA rejected the request as malformed: ${detail}`,
        hint: 'check the names and options given; if they are right, report it with this detail',
      };
    case 'serverInternal':
      return {
        message: `the CA had an internal error: ${detail}`,
        hint: "try again later; check the CA's status page",
      };
    case 'userActionRequired': {
      const link = problem.instance ?? problem.termsOfService;
      return {
        message: `the CA requires an action from you: ${detail}`,
        hint: link
          ? `visit ${link} (for example to accept updated terms of service), then try again`
          : "visit the CA's web site (for example to accept updated terms of service), then try again",
      };
    }
    case 'badCSR':
    case 'badPublicKey':
    case 'badSignatureAlgorithm':
      return {
        message: `the CA rejected the key or the CSR: ${detail}`,
        hint: fix('try another {--key} type (ec-p256 and rsa-2048 are accepted by every CA)'),
      };
    case 'invalidContact':
    case 'unsupportedContact':
      return {
        message: `the CA rejected the contact address: ${detail}`,
        hint: fix('pass a deliverable {--email} (many CAs refuse example.com, .test and other reserved domains)'),
      };
    case 'orderNotReady':
      return {
        message: `the order was not ready to finalize: ${detail}`,
        hint: 'an authorization is still pending or failed; try again',
      };
    case 'untrustedServer':
      return {
        message: `${serverOf(problem.url)} presented a TLS certificate this machine does not trust (${problem.networkCode ?? 'untrusted'})`,
        hint: fix('for a private CA (Pebble, step-ca) pass its root with {--ca-bundle} FILE'),
      };
    case 'network': {
      const code = problem.networkCode;
      return {
        message: `cannot reach ${serverOf(problem.url)}${code ? ` (${code})` : ''}: ${detail}`,
        hint:
          code && TRANSIENT_NETWORK_CODES.has(code)
            ? 'a temporary network error: try again'
            : 'check the directory URL, DNS, proxy settings and that the server is up',
      };
    }
    case 'timeout':
      return { message: `${prefix}the CA did not finish in time: ${detail}`, hint: 'try again; the CA may be slow' };
    case 'badDirectory':
      return {
        message: `the ACME directory is unusable: ${detail}`,
        hint: fix('check {--directory}: it must be the URL of an RFC 8555 directory document'),
      };
    default:
      return {
        message: `${prefix}the ACME server reported a problem${problem.name !== 'unknown' ? ` (${problem.name})` : ''}: ${detail}`,
        hint: 'see the detail; if the request looks right, try again later',
      };
  }
}

/** An McpkiError that carries its AcmeProblem: message and hint from describeProblem, code from errorCodeFor. */
export class AcmeProblemError extends McpkiError {
  readonly problem: AcmeProblem;
  readonly retryable: boolean;

  constructor(problem: AcmeProblem, cause?: unknown) {
    const { message, hint } = describeProblem(problem);
    super(errorCodeFor(problem), message, hint, cause === undefined ? undefined : { cause });
    this.name = 'AcmeProblemError';
    this.problem = problem;
    this.retryable = isRetryable(problem);
  }
}
