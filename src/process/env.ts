// The environment every child process gets (hooks, git, trust tools, getent, sync): mcpki's own environment
// minus every secret it reads. A child is a program of the admin's choosing or a system tool; it needs none of them.

/**
 * Every environment variable through which mcpki reads a secret. No child process (reload hooks, dns-01 hooks,
 * CRL hooks) ever sees them: a hook is a program of the admin's choosing, often a script that logs its
 * environment, and it needs none of them.
 */
export const SECRET_ENV_VARS: readonly string[] = [
  'MCPKI_ROOT_PASSPHRASE',
  'MCPKI_P12_PASSWORD',
  'MCPKI_EAB_HMAC',
  'PGPASSWORD',
];

/** MCPKI_STORE with a password in its URL (postgres://USER:PASSWORD@…) is a secret as well. */
const STORE_WITH_PASSWORD = /^[a-z]+:\/\/[^/@]*:[^/@]*@/i;

/** MCPKI_* names that look like secrets are dropped too, so a secret variable added later cannot leak by omission. */
const SECRET_NAME = /^MCPKI_\w*(PASSPHRASE|PASSWORD|HMAC|SECRET|TOKEN|PRIVATE)\w*$/i;

export function isSecretEnvName(name: string): boolean {
  return SECRET_ENV_VARS.includes(name) || SECRET_NAME.test(name);
}

/** The environment for a child process: `base` (default process.env) without any secret, then `extra` laid over it. */
export function childEnv(
  extra: Record<string, string | undefined> = {},
  base: NodeJS.ProcessEnv = process.env,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(base)) {
    if (value !== undefined && !isSecretEnvName(name) && !(name === 'MCPKI_STORE' && STORE_WITH_PASSWORD.test(value)))
      env[name] = value;
  }
  for (const [name, value] of Object.entries(extra)) {
    if (value !== undefined && !isSecretEnvName(name)) env[name] = value;
  }
  return env;
}
