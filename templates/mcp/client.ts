// An MCP client (Streamable HTTP) that trusts the mcpki root and presents the client certificate {{name}}.
// Rendered by: mcpki template render mcp/client.ts --cert {{name}} --var url=https://HOST:PORT/mcp
// Set up: in a package with "type": "module", npm install @modelcontextprotocol/sdk undici; compile with
// tsc (module NodeNext); run: node client.js [URL].
// Node's own fetch takes no TLS options, so the transport is given undici's fetch bound to an Agent that
// carries the CA and the client certificate. The files are read once: a long-running client builds a new
// Agent after mcpki renews the certificate.
import { readFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Agent, fetch as undiciFetch } from 'undici';

const SERVER_URL = process.argv[2] ?? process.env.MCP_URL ?? "{{url}}";
const CA_FILE = "{{ca}}";
const CERT_FILE = "{{fullchain}}";
const KEY_FILE = "{{key}}";

const agent = new Agent({
  connect: { ca: readFileSync(CA_FILE), cert: readFileSync(CERT_FILE), key: readFileSync(KEY_FILE), minVersion: 'TLSv1.2' },
});

/** The transport's fetch: undici's, through the Agent above (the two RequestInit types differ only nominally). */
const fetchWithCertificate = ((url: string | URL, init?: RequestInit) =>
  undiciFetch(url, { ...(init as Parameters<typeof undiciFetch>[1]), dispatcher: agent })) as unknown as typeof fetch;

async function main(): Promise<void> {
  const client = new Client({ name: "{{name}}", version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(SERVER_URL), { fetch: fetchWithCertificate });
  try {
    await client.connect(transport);
    const { tools } = await client.listTools();
    console.log(`tools: ${tools.map((tool) => tool.name).join(', ')}`);
    if (tools.some((tool) => tool.name === 'whoami')) {
      const result = await client.callTool({ name: 'whoami', arguments: {} });
      const content = result.content as { type: string; text?: string }[];
      console.log(`whoami: ${content.map((part) => part.text ?? '').join('')}`);
    }
  } finally {
    await client.close();
    await agent.close();
  }
}

main().catch((error: unknown) => {
  const code = (error as { cause?: { code?: string } }).cause?.code;
  // Under TLS 1.3 the server checks the client certificate after the handshake: a refusal reaches the client
  // only as a closed socket.
  if (code === 'UND_ERR_SOCKET') console.error(`${SERVER_URL} closed the connection: was the client certificate refused (not from its CA, revoked, expired)?`);
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
