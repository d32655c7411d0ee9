// The lifecycle the standalone responders (http-01, tls-alpn-01) share: a server started on the first
// present(), listen errors turned into typed errors that name the port and the way out, runtime socket errors
// ignored (they must not crash the process), and a close() that drops open connections, is idempotent, and
// is safe during or after a failed start.
import type { AddressInfo, Server } from 'node:net';
import { listenError } from './provider.js';

export interface ListenerOptions<S extends Server> {
  type: 'http-01' | 'tls-alpn-01';
  port: number;
  host: string | undefined;
  /** builds the server, once per start */
  create: () => S;
  /** destroys the connections still open on close */
  dropConnections: (server: S) => void;
}

export class LazyListener<S extends Server> {
  private server: S | undefined;
  private starting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: ListenerOptions<S>) {}

  /** The port listened on, once started. */
  get port(): number | undefined {
    const address = this.server?.address();
    return address && typeof address === 'object' ? (address as AddressInfo).port : undefined;
  }

  start(): Promise<void> {
    if (this.starting) return this.starting;
    const { port, host, type } = this.options;
    const server = this.options.create();
    this.server = server;
    this.starting = new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => {
        if (this.server === server) {
          this.server = undefined;
          this.starting = undefined;
        }
        server.close();
        reject(listenError(error, port, host, type));
      };
      server.once('error', onError);
      server.listen({ port, host, exclusive: true }, () => {
        server.off('error', onError);
        server.on('error', () => undefined);
        resolve();
      });
    });
    return this.starting;
  }

  close(): Promise<void> {
    const server = this.server;
    const starting = this.starting;
    this.server = undefined;
    this.starting = undefined;
    if (!server) return this.closing ?? Promise.resolve();
    this.closing = (async () => {
      await starting?.catch(() => undefined);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        this.options.dropConnections(server);
      });
    })();
    return this.closing;
  }
}
