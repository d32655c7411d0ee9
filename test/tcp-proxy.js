// Test harness: a tiny round-robin TCP proxy on loopback, the load balancer in front of several instances.
//
//   const proxy = await startRoundRobinProxy([{ host: '127.0.0.1', port: a }, { host: '127.0.0.1', port: b }]);
//   ... clients connect to proxy.port ...
//   proxy.counts();  // [{ host, port, connections, failures }, …] in the order of the targets
//   await proxy.close();
//
// Each new client connection goes to the next target in turn. When connecting to that target fails (refused,
// reset, or no answer within connectTimeoutMs), the proxy tries the following ones, each once, so that when one
// instance dies a client's retry reaches another; when every target fails, the client's connection is closed.
// Bytes are relayed untouched (TLS passes through: the client still verifies the instance's certificate). When
// either side closes, the other is closed once what is buffered for it is written; when either fails, the other
// is cut at once. No data is read from the client before its
// target is connected.
import net from 'node:net';

function closeAfterFlush(socket) {
  if (socket.destroyed) return;
  if (socket.writableFinished) socket.destroy();
  else socket.end(() => socket.destroy());
}

/**
 * @param {{host: string, port: number}[]} targets
 * @param {object} [options]
 * @param {number} [options.connectTimeoutMs=2000] a target that does not accept within this is skipped.
 * @returns {Promise<{host: string, port: number, counts(): object[], close(): Promise<void>}>}
 */
export async function startRoundRobinProxy(targets, { connectTimeoutMs = 2000 } = {}) {
  if (!Array.isArray(targets) || targets.length === 0) throw new Error('tcp proxy: at least one target is needed');
  const stats = targets.map(({ host, port }) => ({ host, port, connections: 0, failures: 0 }));
  const sockets = new Set();
  let next = 0;

  const track = (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };

  /** Connects to targets[index], or rejects. */
  const connectTo = (index) =>
    new Promise((resolve, reject) => {
      const { host, port } = targets[index];
      const upstream = net.connect({ host, port });
      track(upstream);
      const timer = setTimeout(
        () => upstream.destroy(new Error(`connect timeout after ${connectTimeoutMs} ms`)),
        connectTimeoutMs,
      );
      upstream.once('connect', () => {
        clearTimeout(timer);
        upstream.removeListener('error', reject);
        resolve(upstream);
      });
      upstream.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });

  const server = net.createServer({ pauseOnConnect: true }, async (client) => {
    track(client);
    let clientGone = false;
    client.once('error', () => client.destroy());
    client.once('close', () => {
      clientGone = true;
    });
    const first = next;
    next = (next + 1) % targets.length;
    for (let i = 0; i < targets.length; i++) {
      const index = (first + i) % targets.length;
      let upstream;
      try {
        upstream = await connectTo(index);
      } catch {
        stats[index].failures++;
        continue;
      }
      if (clientGone) {
        upstream.destroy();
        return;
      }
      stats[index].connections++;
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
      // One side gone: the other gets what is still buffered for it, then is closed.
      upstream.once('close', () => closeAfterFlush(client));
      client.once('close', () => closeAfterFlush(upstream));
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
      return;
    }
    client.destroy();
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });

  let closed;
  return {
    host: '127.0.0.1',
    port: server.address().port,
    /** Per target, in the order given: connections relayed and connect attempts that failed. */
    counts: () => stats.map((s) => ({ ...s })),
    /** Stops listening and cuts every open connection. Idempotent. */
    close() {
      closed ??= new Promise((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closed;
    },
  };
}
