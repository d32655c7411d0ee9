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
 * The worker's code: dist/pki/batch-worker.cjs, one CommonJS file (src/cli/build-bundles.ts) that LOADER compiles
 * with V8's code cache (dist/pki/batch-worker.cjs.cache, src/cli/build-code-cache.ts), next to this module (dist/pki/) or
 * under pki/ when this code runs from a bundle in dist/; otherwise (a tree built with tsc alone) the ES module
 * there. Undefined when none exists (an incomplete installation): the caller signs in its own thread.
 */
function workerFile(): { file: string; bundle: boolean } | undefined {
  for (const relative of ['./batch-worker.cjs', './pki/batch-worker.cjs']) {
    const path = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(path)) return { file: path, bundle: true };
  }
  for (const relative of ['./batch-worker.js', './pki/batch-worker.js']) {
    const path = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(path)) return { file: path, bundle: false };
  }
  return undefined;
}

/**
 * Runs the worker bundle (its path, dist/pki/batch-worker.cjs, is the worker's last argument) as bin/mcpki.js
 * runs dist/cli.cjs, through the installation's bin/load-bundle.js: from V8's code cache when there is one that
 * fits, so each worker neither parses the bundle nor compiles the functions the build's warm-up ran. Node's
 * loader would compile it from source in each worker, as it does an ES module (whose loader itself takes tens
 * of milliseconds to start in a worker).
 */
export const LOADER = `'use strict';
const { dirname, join } = require('node:path');
const file = process.argv[process.argv.length - 1];
require(join(dirname(dirname(dirname(file))), 'bin', 'load-bundle.js')).runBundle(file);
`;

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

  private constructor(code: { file: string; bundle: boolean }, ca: ChunkCa, size: number) {
    const { Worker } = workerThreads();
    this.workers = Array.from({ length: size }, (_, index) => {
      const worker = code.bundle
        ? new Worker(LOADER, { eval: true, argv: [code.file], workerData: ca })
        : new Worker(code.file, { workerData: ca });
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
    const code = workerFile();
    return code ? new SigningPool(code, ca, size) : undefined;
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
