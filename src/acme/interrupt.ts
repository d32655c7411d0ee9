// SIGINT/SIGTERM during an ACME order: the command turns the signal into an AbortSignal (reason: the signal's
// name); the order stops waiting, kills a running dns-01 hook, runs every cleanup, deactivates the pending
// authorizations, and then fails with INTERRUPTED, which exits 128 + the signal's number (130, 143).
import { McpkiError } from '../errors.js';

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGTERM: 15 };

export class InterruptedError extends McpkiError {
  readonly signal: string;

  constructor(signal: string, message: string, hint: string) {
    super('INTERRUPTED', message, hint);
    this.name = 'InterruptedError';
    this.signal = signal;
  }

  /** 128 + the signal's number, as a shell reports a process killed by it (SIGINT 130, SIGTERM 143). */
  override get exitCode(): number {
    return 128 + (SIGNAL_NUMBERS[this.signal] ?? 15);
  }
}

/** The signal's name an AbortSignal was aborted with ('SIGTERM' when the reason is not one). */
export function signalOf(signal: AbortSignal): string {
  return typeof signal.reason === 'string' && /^SIG[A-Z]+$/.test(signal.reason) ? signal.reason : 'SIGTERM';
}

export function interrupted(signal: AbortSignal, during: string): InterruptedError {
  const name = signalOf(signal);
  return new InterruptedError(
    name,
    `interrupted by ${name} during ${during}; the challenges were cleaned up`,
    'run the command again: what was not finished was not written',
  );
}

export function throwIfInterrupted(signal: AbortSignal | undefined, during: string): void {
  if (signal?.aborted) throw interrupted(signal, during);
}

/** `promise`, or an InterruptedError as soon as `signal` aborts (the work behind the promise is abandoned). */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined, during: string): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(interrupted(signal, during));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(interrupted(signal, during));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** Sleeps `ms`; an abort ends the sleep at once with an InterruptedError. */
export function sleep(ms: number, signal?: AbortSignal, during = 'a wait'): Promise<void> {
  return abortable(
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal?.addEventListener('abort', () => clearTimeout(timer), { once: true });
    }),
    signal,
    during,
  );
}
