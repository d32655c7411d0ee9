// The worker thread of batch issuance: signs the chunks the main thread sends (keys, certificates, temp
// files) with the CA it was started with, one reply a chunk. See issueBatch in issue.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { McpkiError } from '../errors.js';
import { makeLeaves, type ChunkCa, type ChunkPlan } from './batch-leaf.js';

// for the build's warm-up, which runs the bundle (dist/batch-worker.cjs) before it saves its code cache
export { makeLeaves };

/** What the main thread sends: a chunk to sign, numbered. */
export interface ChunkRequest {
  id: number;
  plans: ChunkPlan[];
  now: number;
}

/** What the worker answers: the chunk's certificates, or why it failed (its temp files already removed). */
export type ChunkReply =
  | { id: number; leaves: ReturnType<typeof makeLeaves> }
  | { id: number; error: { code?: string; message: string; hint?: string; stack?: string } };

/** Buffers arrive as Uint8Arrays after the structured clone. */
const buffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

if (parentPort) {
  const port = parentPort;
  const data = workerData as ChunkCa;
  const ca: ChunkCa = {
    pem: data.pem,
    rootPem: data.rootPem,
    der: buffer(data.der),
    signer: { ...data.signer, subject: buffer(data.signer.subject), keyId: buffer(data.signer.keyId) },
  };
  port.on('message', (request: ChunkRequest) => {
    let reply: ChunkReply;
    try {
      reply = { id: request.id, leaves: makeLeaves(ca, request.plans, request.now) };
    } catch (error) {
      const e = error as Error;
      reply = {
        id: request.id,
        error:
          error instanceof McpkiError
            ? { code: error.code, message: error.message, hint: error.hint }
            : { message: e?.message ?? String(error), stack: e?.stack },
      };
    }
    port.postMessage(reply);
  });
}
