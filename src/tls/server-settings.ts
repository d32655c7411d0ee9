// The TLS settings a server was created with, read back so that a context swap keeps them.
import type tls from 'node:tls';

/**
 * The context settings a tls.Server keeps as properties (set by its constructor through setSecureContext).
 * setSecureContext resets each one it is not given, so a swap passes them again.
 */
const SERVER_SETTINGS = [
  'ciphers',
  'sigalgs',
  'ecdhCurve',
  'dhparam',
  'minVersion',
  'maxVersion',
  'secureProtocol',
  'secureOptions',
  'honorCipherOrder',
  'sessionIdContext',
  'sessionTimeout',
  'ticketKeys',
  'passphrase',
  'privateKeyIdentifier',
  'privateKeyEngine',
  'clientCertEngine',
] as const;

export function settingsOf(server: tls.Server): tls.SecureContextOptions {
  const settings: Record<string, unknown> = {};
  for (const name of SERVER_SETTINGS) {
    const value = (server as unknown as Record<string, unknown>)[name];
    if (value !== undefined) settings[name] = value;
  }
  return settings as tls.SecureContextOptions;
}
