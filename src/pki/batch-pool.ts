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

/** The CommonJS wrapper around the bundle's text (bin/mcpki.js's); the cache is made for the wrapped text. */
const WRAP = ['(function (exports, require, module, __filename, __dirname) {', '\n})'] as const;

/**
 * Runs the worker bundle (its path is the worker's last argument) as bin/mcpki.js runs dist/cli.cjs: from V8's
 * code cache when there is one that fits (V8 ignores one that does not), so each worker neither parses the
 * bundle nor compiles the functions the build's warm-up ran. Node's loader would compile it from source in
 * each worker, as it does an ES module (whose loader itself takes tens of milliseconds to start in a worker).
 * The cache file holds the bundle's path at build time (a 4-byte length, then UTF-8, then zero bytes up to a
 * multiple of 8: src/cli/bundles.ts) before V8's data; code from the cache names that path in stacks, so they
 * are given the installed one.
 */
export const LOADER = `'use strict';
const { readFileSync } = require('node:fs');
const { dirname } = require('node:path');
const vm = require('node:vm');
const { createRequire } = require('node:module');
const file = process.argv[process.argv.length - 1];
let builtAs, cachedData;
try {
  const data = readFileSync(file + '.cache');
  const length = data.length >= 4 ? data.readUInt32LE(0) : -1;
  const start = (4 + length + 7) & ~7;
  if (length >= 0 && start <= data.length) {
    builtAs = data.toString('utf8', 4, 4 + length);
    cachedData = data.subarray(start);
  }
} catch {}
const source = readFileSync(file, 'utf8');
const wrapper = ${JSON.stringify(WRAP[0])} + source + ${JSON.stringify(WRAP[1])};
const script = new vm.Script(wrapper, { filename: file, cachedData });
if (cachedData && !script.cachedDataRejected && builtAs && builtAs !== file) {
  const previous = Error.prepareStackTrace;
  Error.prepareStackTrace = (error, frames) => {
    const text = previous ? previous(error, frames) : String(error) + frames.map((f) => '\\n    at ' + f).join('');
    return typeof text === 'string' ? text.split(builtAs).join(file) : text;
  };
}
const mod = { exports: {} };
script.runInThisContext()(mod.exports, createRequire(file), mod, file, dirname(file));
`;

/** The wrapper LOADER puts around the bundle's text: the build compiles the same text for the cache. */
export function wrapWorkerBundle(source: string): string {
  return WRAP[0] + source + WRAP[1];
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
