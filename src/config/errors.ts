import { McpkiError } from '../errors.js';

/**
 * An invalid mcpki.yaml: code INVALID_INPUT, a one-line summary ("mcpki.yaml has 3 errors") as the message,
 * and every error, one per entry, in `details` ("mcpki.yaml:14:9 certificates[2].targets[0].mode: …").
 */
export class ConfigError extends McpkiError {
  readonly details: string[];

  constructor(message: string, details: string[], hint?: string) {
    super('INVALID_INPUT', message, hint);
    this.name = 'ConfigError';
    this.details = details;
  }
}

export function isConfigError(error: unknown): error is ConfigError {
  return error instanceof ConfigError;
}
