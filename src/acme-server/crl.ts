// The ACME server's CRL: `GET /crl` answers the issuing intermediate's newest CRL (DER, application/pkix-crl,
// the form RFC 5280 §4.2.1.13 distribution points use), read from HOME/ca/crl.pem; and on an inventory several
// instances share, a check every few seconds makes that file the newest CRL any of them published (one indexed
// query when nothing changed), so a revocation made through one instance is served by all within seconds.
import { statSync } from 'node:fs';
import type { Context } from '../context.js';
import { adoptNewestCrl, CRL_FILE_LIMIT, crlsShared, homeCrlNumber, readCaText, readCrl } from '../pki/crl.js';
import { fromPem } from '../pki/der.js';

/** How often an instance on a shared inventory looks for a newer CRL. */
export const CRL_FOLLOW_MS = 5_000;

export interface CrlServing {
  /** the DER of HOME/ca/crl.pem's first CRL (the issuing intermediate's), or undefined when there is none */
  current(): { der: Buffer; number: string | null } | undefined;
  stop(): void;
}

/** What changes when HOME/ca/crl.pem is replaced or rewritten; undefined when it is missing. */
function fileSignature(path: string): string | undefined {
  try {
    const stat = statSync(path);
    return `${stat.ino}:${stat.size}:${stat.mtimeMs}:${stat.ctimeMs}`;
  } catch {
    return undefined;
  }
}

export function serveCrl(context: Context, everyMs = CRL_FOLLOW_MS): CrlServing {
  let cached: { signature: string; der: Buffer; number: string | null } | undefined;
  const current = () => {
    const signature = fileSignature(context.layout.crl);
    if (signature === undefined) return undefined;
    if (cached?.signature !== signature) {
      try {
        const der = fromPem(readCaText(context.layout.crl, 'the published CRL', CRL_FILE_LIMIT), 'X509 CRL')[0];
        cached = der ? { signature, der, number: readCrl(der).number } : undefined;
      } catch {
        cached = undefined;
      }
    }
    return cached ? { der: cached.der, number: cached.number } : undefined;
  };

  let timer: NodeJS.Timeout | undefined;
  let shared = false;
  try {
    shared = crlsShared(context);
  } catch {
    // no inventory: nothing to follow
  }
  if (shared) {
    // the number in HOME/ca/crl.pem, read again only when the file changes
    let known: { number: bigint; signature: string | undefined } | undefined;
    let lastError = '';
    const check = () => {
      try {
        const signature = fileSignature(context.layout.crl);
        if (!known || known.signature !== signature) known = { number: homeCrlNumber(context), signature };
        adoptNewestCrl(context, known.number);
        lastError = '';
      } catch (error) {
        known = undefined;
        const message = String((error as Error)?.message ?? error).slice(0, 500);
        if (message === lastError) return; // reported once, until it changes
        lastError = message;
        try {
          context.store().addEvent({ type: 'acme-server.error', detail: { path: '/crl', error: message } });
        } catch {
          // the inventory is away: tried again at the next check
        }
      }
    };
    timer = setInterval(check, everyMs);
    timer.unref();
  }
  return {
    current,
    stop: () => {
      if (timer) clearInterval(timer);
    },
  };
}
