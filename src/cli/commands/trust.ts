import type { Command } from 'commander';

/** trust install|uninstall|status and env: wired in src/trust/. */
export function registerTrust(_program: Command): void {}
