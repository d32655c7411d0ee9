// TLS cipher suites by IANA code point, grouped the way `mcpki check` judges them. The raw ClientHello
// (hello.ts) can offer any of them, whatever the local OpenSSL still supports (3DES and RC4 are gone from
// OpenSSL 3's default build), because the probe only reads the server's answer.

export const SUITE_NAMES: Record<number, string> = {
  0x1301: 'TLS_AES_128_GCM_SHA256',
  0x1302: 'TLS_AES_256_GCM_SHA384',
  0x1303: 'TLS_CHACHA20_POLY1305_SHA256',
  0xc02b: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  0xc02f: 'ECDHE-RSA-AES128-GCM-SHA256',
  0xc02c: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  0xc030: 'ECDHE-RSA-AES256-GCM-SHA384',
  0xcca9: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  0xcca8: 'ECDHE-RSA-CHACHA20-POLY1305',
  0x009e: 'DHE-RSA-AES128-GCM-SHA256',
  0x009f: 'DHE-RSA-AES256-GCM-SHA384',
  0xccaa: 'DHE-RSA-CHACHA20-POLY1305',
  // CBC with forward secrecy
  0xc009: 'ECDHE-ECDSA-AES128-SHA',
  0xc00a: 'ECDHE-ECDSA-AES256-SHA',
  0xc013: 'ECDHE-RSA-AES128-SHA',
  0xc014: 'ECDHE-RSA-AES256-SHA',
  0xc023: 'ECDHE-ECDSA-AES128-SHA256',
  0xc024: 'ECDHE-ECDSA-AES256-SHA384',
  0xc027: 'ECDHE-RSA-AES128-SHA256',
  0xc028: 'ECDHE-RSA-AES256-SHA384',
  0x0033: 'DHE-RSA-AES128-SHA',
  0x0039: 'DHE-RSA-AES256-SHA',
  0x0067: 'DHE-RSA-AES128-SHA256',
  0x006b: 'DHE-RSA-AES256-SHA256',
  // RSA key exchange (no forward secrecy)
  0x002f: 'AES128-SHA',
  0x0035: 'AES256-SHA',
  0x003c: 'AES128-SHA256',
  0x003d: 'AES256-SHA256',
  0x009c: 'AES128-GCM-SHA256',
  0x009d: 'AES256-GCM-SHA384',
  // 3DES (64-bit blocks: Sweet32)
  0x000a: 'DES-CBC3-SHA',
  0xc008: 'ECDHE-ECDSA-DES-CBC3-SHA',
  0xc012: 'ECDHE-RSA-DES-CBC3-SHA',
  0x0016: 'DHE-RSA-DES-CBC3-SHA',
  // broken: RC4, NULL encryption, export grade, single DES, anonymous (no authentication)
  0x0004: 'RC4-MD5',
  0x0005: 'RC4-SHA',
  0xc007: 'ECDHE-ECDSA-RC4-SHA',
  0xc011: 'ECDHE-RSA-RC4-SHA',
  0x0001: 'NULL-MD5',
  0x0002: 'NULL-SHA',
  0x003b: 'NULL-SHA256',
  0xc006: 'ECDHE-ECDSA-NULL-SHA',
  0xc010: 'ECDHE-RSA-NULL-SHA',
  0x0003: 'EXP-RC4-MD5',
  0x0006: 'EXP-RC2-CBC-MD5',
  0x0008: 'EXP-DES-CBC-SHA',
  0x0014: 'EXP-EDH-RSA-DES-CBC-SHA',
  0x0009: 'DES-CBC-SHA',
  0x0015: 'EDH-RSA-DES-CBC-SHA',
  0x0018: 'ADH-RC4-MD5',
  0x0034: 'ADH-AES128-SHA',
  0x003a: 'ADH-AES256-SHA',
  0x00a6: 'ADH-AES128-GCM-SHA256',
  0x00a7: 'ADH-AES256-GCM-SHA384',
  0xc018: 'AECDH-AES128-SHA',
  0xc019: 'AECDH-AES256-SHA',
  0xc016: 'AECDH-RC4-SHA',
};

export const TLS13_SUITES = [0x1301, 0x1302, 0x1303];

const AEAD_FS = [0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0x009e, 0x009f, 0xccaa];
const CBC_FS = [0xc009, 0xc013, 0xc00a, 0xc014, 0xc023, 0xc027, 0xc024, 0xc028, 0x0033, 0x0039, 0x0067, 0x006b];
const RSA_KX = [0x009c, 0x009d, 0x002f, 0x0035, 0x003c, 0x003d];
const TRIPLE_DES = [0xc012, 0xc008, 0x0016, 0x000a];
const BROKEN = [
  0x0005, 0x0004, 0xc011, 0xc007, 0x0001, 0x0002, 0x003b, 0xc006, 0xc010, 0x0003, 0x0006, 0x0008, 0x0014, 0x0009,
  0x0015, 0x0018, 0x0034, 0x003a, 0x00a6, 0x00a7, 0xc018, 0xc019, 0xc016,
];

/** What a TLS 1.2 client of any age might offer: enough for any server to answer with its full flight. */
export const ANY_TLS12_SUITES = [...AEAD_FS, ...CBC_FS, ...RSA_KX, ...TRIPLE_DES];

/** Suites that exist in TLS 1.0 and 1.1 (no GCM, no SHA-256 MACs). */
export const LEGACY_SUITES = [
  0xc013,
  0xc014,
  0xc009,
  0xc00a,
  0x0033,
  0x0039,
  0x002f,
  0x0035,
  ...TRIPLE_DES,
  0x0005,
  0x0004,
];

export interface WeakCategory {
  id: string;
  /** how a finding names the category */
  label: string;
  suites: number[];
  /** accepted when offered alone: info (modern clients never choose them), warning, or failure */
  severity: 'info' | 'warning' | 'failure';
  why: string;
}

export const WEAK_CATEGORIES: WeakCategory[] = [
  {
    id: 'cbc',
    label: 'CBC cipher suites',
    suites: CBC_FS,
    severity: 'info',
    why: 'CBC with HMAC has a long history of padding-oracle attacks',
  },
  {
    id: 'rsa-kx',
    label: 'RSA key exchange',
    suites: RSA_KX,
    severity: 'info',
    why: 'no forward secrecy: whoever gets the key later can decrypt recorded traffic',
  },
  { id: '3des', label: '3DES cipher suites', suites: TRIPLE_DES, severity: 'warning', why: '64-bit blocks (Sweet32)' },
  {
    id: 'broken',
    label: 'broken cipher suites (RC4, NULL, export, DES or anonymous)',
    suites: BROKEN,
    severity: 'failure',
    why: 'they give no real confidentiality or no authentication',
  },
];

export function suiteName(code: number): string {
  return SUITE_NAMES[code] ?? `0x${code.toString(16).padStart(4, '0')}`;
}

/** The category a suite chosen by the server falls in, for judging the suite a modern client negotiates. */
export function categoryOf(name: string): WeakCategory | undefined {
  const code = Number(Object.entries(SUITE_NAMES).find(([, n]) => n === name)?.[0]);
  return WEAK_CATEGORIES.find((category) => category.suites.includes(code));
}
