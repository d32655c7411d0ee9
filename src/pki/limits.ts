// Lifetimes, defined once for the issuer (pki) and for what mcpki.yaml accepts (config). No imports: config
// loads this without loading the issuer.

/** Days a leaf certificate lives unless told otherwise. */
export const DEFAULT_DAYS = 90;
/** The CA/Browser Forum and Apple limit for TLS server certificates. */
export const MAX_DAYS = 398;
/** Days until a CRL's nextUpdate unless told otherwise. */
export const DEFAULT_CRL_DAYS = 7;
export const MAX_CRL_DAYS = 365;
/** Certificates are backdated a little so that a peer with a slightly slow clock accepts them at once. */
export const BACKDATE_MS = 5 * 60_000;
