// Worker threads that sign a batch's chunks (batch-worker.ts), so that key generation, signing and writing
// the temp files use every core while the main thread syncs, records and renames.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { McpkiError, type ErrorCode } from '../errors.js';
import type { ChunkCa, ChunkPlan, MadeLeaf } from './batch-leaf.js';
import type { ChunkReply, ChunkRequest } from './batch-worker.js';

/**
 * The worker's file: next to this module (dist/pki/), or under pki/ when this code runs from a bundle in
 * dist/. Undefined when neither exists (an incomplete installation): the caller signs in its own thread.
 */
function workerFile(): string | undefined {
  for (const relative of ['./batch-worker.js', './pki/batch-worker.js']) {
    const path = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(path)) return path;
  }
  return undefined;
}

/** node:worker_threads, loaded when a batch first needs it: `issue server` never does. */
function workerThreads(): typeof import('node:worker_threads') {
  return createRequire(import.meta.url)('node:worker_threads') as typeof import('node:worker_threads');
}

function errorFrom(reply: Extract<ChunkReply, { error: unknown }>['error']): Error {
  if (reply.code) return new McpkiError(reply.code as ErrorCode, reply.message, reply.hint);
  const error = new Error(reply.message);
  if (reply.stack) error.stack = reply.stack;
  return error;
}

interface Waiting {
  worker: number;
  resolve: (leaves: MadeLeaf[]) => void;
  reject: (error: Error) => void;
}

export class SigningPool {
  private readonly workers: Worker[];
  private readonly waiting = new Map<number, Waiting>();

  private constructor(file: string, ca: ChunkCa, size: number) {
    const { Worker } = workerThreads();
    this.workers = Array.from({ length: size }, (_, index) => {
      const worker = new Worker(file, { workerData: ca });
      worker.on('message', (reply: ChunkReply) => {
        const waiting = this.waiting.get(reply.id);
        if (!waiting) return;
        this.waiting.delete(reply.id);
        if ('error' in reply) waiting.reject(errorFrom(reply.error));
        else waiting.resolve(reply.leaves);
      });
      const fail = (error: Error) => {
        for (const [id, waiting] of this.waiting) {
          if (waiting.worker !== index) continue;
          this.waiting.delete(id);
          waiting.reject(error);
        }
      };
      worker.on('error', fail);
      worker.on('exit', (code) => fail(new Error(`a signing thread stopped (exit code ${code})`)));
      return worker;
    });
  }

  /** Up to `size` workers, or undefined when the worker's file is missing. */
  static start(ca: ChunkCa, size: number): SigningPool | undefined {
    const file = workerFile();
    return file ? new SigningPool(file, ca, size) : undefined;
  }

  /** Chunk `id` goes to worker id mod size, so consecutive chunks are made side by side. */
  sign(id: number, plans: ChunkPlan[], now: number): Promise<MadeLeaf[]> {
    const worker = id % this.workers.length;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { worker, resolve, reject });
      const request: ChunkRequest = { id, plans, now };
      this.workers[worker]!.postMessage(request);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.terminate()));
  }
}
