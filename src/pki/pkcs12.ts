import type { KeyObject } from 'node:crypto';
import { McpkiError } from '../errors.js';

export interface Pkcs12Options {
  key: KeyObject;
  /** DER certificates, leaf first */
  certificates: readonly Buffer[];
  password: string;
  friendlyName?: string;
  /** 3DES + SHA-1 MAC, for old Java and Windows */
  legacy?: boolean;
}

export function encodePkcs12(_options: Pkcs12Options): Buffer {
  throw new McpkiError('INTERNAL', 'PKCS#12 export is not available yet', 'omit --p12');
}
