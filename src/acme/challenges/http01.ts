// http-01 standalone responder (RFC 8555 section 8.3): one node:http server, started on the first present(),
// answering GET/HEAD /.well-known/acme-challenge/<token> with the key authorization and 404 to anything else.
// close() stops it and drops open connections; it is idempotent and safe after a failed start.
import http from 'node:http';
import { LazyListener } from './listener.js';
import {
  assertKeyAuthorization,
  assertNotWildcard,
  assertToken,
  type ChallengeProvider,
  type ChallengeTask,
} from './provider.js';

export const DEFAULT_HTTP_PORT = 80;
const PREFIX = '/.well-known/acme-challenge/';

export interface Http01Options {
  /** default 80; 0 picks a free port (see `port` after the first present) */
  port?: number;
  /** default: all interfaces */
  host?: string;
}

export class Http01Provider implements ChallengeProvider {
  readonly type = 'http-01' as const;
  private readonly answers = new Map<string, string>();
  private readonly listener: LazyListener<http.Server>;

  constructor(options: Http01Options = {}) {
    this.listener = new LazyListener({
      type: 'http-01',
      port: options.port ?? DEFAULT_HTTP_PORT,
      host: options.host,
      create: () => {
        const server = http.createServer((request, response) => this.respond(request, response));
        server.keepAliveTimeout = 1000;
        server.headersTimeout = 10_000;
        server.requestTimeout = 10_000;
        return server;
      },
      dropConnections: (server) => server.closeAllConnections(),
    });
  }

  /** The port the responder listens on, once started. */
  get port(): number | undefined {
    return this.listener.port;
  }

  /** Binds the port before the order is placed, and keeps it until close(). */
  async prepare(): Promise<void> {
    await this.listener.start();
  }

  async present(task: ChallengeTask): Promise<void> {
    assertNotWildcard(task, 'http-01');
    assertToken(task.token);
    assertKeyAuthorization(task);
    this.answers.set(task.token, task.keyAuthorization);
    try {
      await this.listener.start();
    } catch (error) {
      this.answers.delete(task.token);
      throw error;
    }
  }

  async cleanup(task: ChallengeTask): Promise<void> {
    if (this.answers.get(task.token) === task.keyAuthorization) this.answers.delete(task.token);
  }

  close(): Promise<void> {
    this.answers.clear();
    return this.listener.close();
  }

  private respond(request: http.IncomingMessage, response: http.ServerResponse): void {
    const path = (request.url ?? '').split('?')[0]!;
    const answer = path.startsWith(PREFIX) ? this.answers.get(path.slice(PREFIX.length)) : undefined;
    if ((request.method !== 'GET' && request.method !== 'HEAD') || answer === undefined) {
      response.writeHead(404, { 'content-type': 'text/plain', 'content-length': 10 });
      response.end(request.method === 'HEAD' ? undefined : 'not found\n');
      return;
    }
    const body = Buffer.from(answer, 'utf8');
    response.writeHead(200, {
      'content-type': 'text/plain',
      'content-length': body.length,
      'cache-control': 'no-store',
    });
    response.end(request.method === 'HEAD' ? undefined : body);
  }
}
