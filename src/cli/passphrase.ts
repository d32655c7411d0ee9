import { INPUT_LIMITS, McpkiError, readInputText } from '../index.js';

/**
 * Reads a secret from a file: the first line, without its line ending. A regular file of at most 64 KiB: a
 * FIFO, /dev/zero or a folder is refused at once instead of hanging or filling memory.
 */
export function readSecretFile(path: string, what: string): string {
  const hint = 'give a readable file whose first line is the secret';
  let text: string;
  try {
    text = readInputText(path, {
      what: `the ${what} file`,
      maxBytes: INPUT_LIMITS.secret,
      code: 'PASSPHRASE_MISSING',
      hint,
    });
  } catch (error) {
    // a file that cannot be opened: missing or unreadable (a FIFO, a device or a huge file is invalid input)
    if (!(error instanceof McpkiError) || error.code !== 'PASSPHRASE_MISSING') throw error;
    const errno = (error.cause as NodeJS.ErrnoException | undefined)?.code ?? 'error';
    throw new McpkiError(
      'PASSPHRASE_MISSING',
      `cannot read the ${what} file ${path} (${errno === 'ENOENT' ? 'it does not exist' : errno})`,
      hint,
      { cause: error },
    );
  }
  return text.split(/\r?\n/)[0]!;
}

async function prompt(question: string): Promise<string> {
  const { createInterface } = await import('node:readline');
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  // mute the echo of what is typed
  (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = (s: string) => {
    if (s.startsWith(question)) process.stderr.write(question);
  };
  try {
    return await new Promise<string>((resolve) => rl.question(question, resolve));
  } finally {
    process.stderr.write('\n');
    rl.close();
  }
}

/**
 * The root key passphrase: --passphrase-file, else MCPKI_ROOT_PASSPHRASE, else a prompt when stdin is a
 * TTY (twice when creating), else undefined.
 */
export async function resolveRootPassphrase(options: {
  file?: string;
  confirm?: boolean;
}): Promise<string | undefined> {
  if (options.file) return readSecretFile(options.file, 'passphrase');
  if (process.env.MCPKI_ROOT_PASSPHRASE) return process.env.MCPKI_ROOT_PASSPHRASE;
  if (!process.stdin.isTTY) return undefined;
  const first = await prompt('Root key passphrase: ');
  if (options.confirm) {
    const second = await prompt('Repeat the passphrase: ');
    if (first !== second)
      throw new McpkiError('PASSPHRASE_MISSING', 'the two passphrases differ', 'run the command again');
  }
  return first;
}
