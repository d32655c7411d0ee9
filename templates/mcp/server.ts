// An MCP server (Streamable HTTP) serving HTTPS itself with the mcpki certificate {{name}}.
// Rendered by: mcpki template render mcp/server.ts --cert {{name}}
// Set up: in a package with "type": "module", npm install @modelcontextprotocol/sdk zod mcpki; compile with
// tsc (module NodeNext); run: node server.js (MCP_HOST and MCP_PORT override the address).
// The certificate files are watched: when mcpki renews them, new connections get the new certificate
// without a restart, and a file that does not parse or a key that does not match is never installed.
// With client certificates required, clients need one from the mcpki CA (sent with its chain), and
// revoked ones are refused through the CRL, which "mcpki crl" must keep current. Tool handlers see the
// verified client certificate as `identity` (see clientIdentity): its SPIFFE ID (SAN URI), e-mail, common
// name, serial and RFC 8705 thumbprint (x5t#S256), the same fields as mcp/server.py's whoami.
import { createHash } from 'node:crypto';
import { createServer, type ServerOptions } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createTlsReloader } from 'mcpki';
import { z } from 'zod';

const CERT_FILE = "{{fullchain}}";
const KEY_FILE = "{{key}}";
const CA_FILE = "{{ca}}";
const CRL_FILE = "{{crl}}";
const REQUIRE_CLIENT_CERT = (process.env.MCP_REQUIRE_CLIENT_CERT ?? "{{requireClientCert}}") !== "false";
const HOST = process.env.MCP_HOST ?? "{{listenHost}}";
const PORT = Number(process.env.MCP_PORT ?? "{{listenPort}}");
const MCP_PATH = "{{mcpPath}}";

/** The verified client certificate of a connection; null without one (only with requireClientCert=false). */
interface ClientIdentity {
  /** the SPIFFE ID (first SAN URI), else the first SAN e-mail, else the subject's common name */
  id: string | null;
  uri: string[];
  email: string[];
  cn: string | null;
  /** upper-case hex, as openssl and "mcpki show" print it */
  serial: string;
  not_after: string;
  /** RFC 8705 x5t#S256: base64url SHA-256 of the DER certificate, for certificate-bound tokens */
  thumbprint: string;
}

/** Node's subjectaltname text ("URI:spiffe://…, email:a@b"; values with a comma come JSON-quoted) by type. */
function subjectAltNames(text: string | undefined): Map<string, string[]> {
  const names = new Map<string, string[]>();
  for (const match of (text ?? '').matchAll(/(?:^|, )([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)/g)) {
    const value = match[2]!.startsWith('"') ? (JSON.parse(match[2]!) as string) : match[2]!;
    names.set(match[1]!, [...(names.get(match[1]!) ?? []), value]);
  }
  return names;
}

/** The identity in the client certificate of the request's TLS connection, once the handshake verified it. */
function clientIdentity(request: IncomingMessage): ClientIdentity | null {
  const socket = request.socket as TLSSocket;
  if (!socket.authorized) return null;
  const peer = socket.getPeerCertificate();
  if (!peer?.raw) return null;
  const names = subjectAltNames(peer.subjectaltname);
  const uri = names.get('URI') ?? [];
  const email = names.get('email') ?? [];
  const cnField = (peer.subject as Record<string, string | string[]> | undefined)?.CN;
  const cn = (Array.isArray(cnField) ? cnField[0] : cnField) ?? null;
  return {
    id: uri[0] ?? email[0] ?? cn,
    uri,
    email,
    cn,
    serial: peer.serialNumber.toUpperCase(),
    not_after: peer.valid_to,
    thumbprint: createHash('sha256').update(peer.raw).digest('base64url'),
  };
}

/** One MCP server per request (stateless); its tools see the verified client `identity` of the request. */
function buildServer(identity: ClientIdentity | null): McpServer {
  const server = new McpServer({ name: "{{name}}", version: '1.0.0' });
  server.registerTool(
    'whoami',
    { description: 'The verified client certificate this request came with: id (SPIFFE ID, e-mail or common name), uri, email, cn, serial, thumbprint' },
    async () => ({ content: [{ type: 'text', text: JSON.stringify(identity ?? { id: null }) }] }),
  );
  server.registerTool('echo', { description: 'Returns its text', inputSchema: { text: z.string() } }, async ({ text }) => ({
    content: [{ type: 'text', text }],
  }));
  return server;
}

async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = new URL(request.url ?? '/', 'https://localhost').pathname;
  if (path !== MCP_PATH) {
    response.writeHead(404).end();
    return;
  }
  if (request.method !== 'POST') {
    // stateless: no server-initiated stream (GET) and no session to end (DELETE)
    response.writeHead(405, { Allow: 'POST', 'Content-Type': 'application/json' });
    response.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null }));
    return;
  }
  const server = buildServer(clientIdentity(request));
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  response.on('close', () => {
    void transport.close();
    void server.close();
  });
  await server.connect(transport);
  await transport.handleRequest(request, response);
}

const reloader = createTlsReloader({
  cert: CERT_FILE,
  key: KEY_FILE,
  ...(REQUIRE_CLIENT_CERT ? { ca: CA_FILE, crl: CRL_FILE } : {}),
  requestCert: REQUIRE_CLIENT_CERT,
  contextOptions: { minVersion: 'TLSv1.2' },
  onReload: (info) => console.log(`certificate reloaded: serial ${info.serial}, valid until ${info.notAfter}`),
  onError: (error) => console.error(`certificate not reloaded, still serving the previous one: ${error.message}`),
});

const options: ServerOptions = { ...reloader.serverOptions() };
const httpsServer = reloader.attach(
  createServer(options, (request, response) => {
    handle(request, response).catch((error: unknown) => {
      console.error(error);
      if (!response.headersSent) response.writeHead(500).end();
    });
  }),
);

httpsServer.listen(PORT, HOST, () => {
  console.log(`MCP server on https://${HOST}:${PORT}${MCP_PATH} (serial ${reloader.current().serial}${REQUIRE_CLIENT_CERT ? ', client certificate required' : ''})`);
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    reloader.close();
    httpsServer.close();
    httpsServer.closeAllConnections();
  });
}
