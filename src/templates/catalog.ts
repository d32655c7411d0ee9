// What each template is for, and the defaults of the variables it takes that no certificate provides.
// Every template has an entry; the installation's paths and --var fill the rest.

export interface CatalogEntry {
  /** one line: the job this template does */
  description: string;
  /** variable defaults; a default may refer to other variables ({{listenPort}}) */
  defaults?: Record<string, string>;
}

/** Defaults every template may use; --var overrides them. */
export const COMMON_DEFAULTS: Readonly<Record<string, string>> = {
  listen: '0.0.0.0:8443',
  upstream: 'http://127.0.0.1:3000',
  mcpPath: '/mcp',
  url: 'https://localhost:8443/mcp',
};

export const CATALOG: Readonly<Record<string, CatalogEntry>> = {
  'nginx/mcp-mtls.conf': {
    description:
      'nginx server block: TLS + required client certificate (CRL-checked) in front of an http:// MCP server',
  },
  'nginx/mcp-tls.conf': { description: 'nginx server block: TLS only in front of an http:// MCP server' },
  'nginx/mcp-mtls-upstream.conf': {
    description:
      'nginx server block: TLS in front of an https:// MCP server that requires a client certificate (--client-cert)',
    defaults: { upstream: 'https://localhost:3443' },
  },
  'haproxy/mcp-mtls.cfg': {
    description: 'HAProxy configuration: TLS + required client certificate (combined PEM, CRL-checked)',
  },
  'caddy/Caddyfile': { description: 'Caddyfile: TLS + required client certificate in front of an MCP server' },
  'traefik/mcp-mtls.yml': {
    description:
      'Traefik dynamic configuration: certificate, TLS options requiring a client certificate, router and service',
    defaults: { entryPoint: 'websecure' },
  },
  'mcp/server.ts': {
    description:
      'TypeScript MCP server (Streamable HTTP) on node:https, optional client certificate, certificate hot reload',
    defaults: { requireClientCert: 'true' },
  },
  'mcp/server.py': {
    description:
      'Python MCP server (SDK 2.x MCPServer, stateless Streamable HTTP) run by uvicorn with TLS, client certificate required, CRL-checked; tools see the client identity',
    defaults: { requireClientCert: 'true' },
  },
  'mcp/client.py': { description: 'Python MCP client (SDK 2.x, httpx2) with the mcpki root and a client certificate' },
  'mcp/client.ts': { description: 'TypeScript MCP client with a custom CA and a client certificate (undici Agent)' },
  'mcp/claude-code.sh': {
    description:
      'Claude Code with an mcpki client certificate: CLAUDE_CODE_CLIENT_CERT, CLAUDE_CODE_CLIENT_KEY, NODE_EXTRA_CA_CERTS, and the "claude mcp add --transport http" line',
    defaults: { mcpServer: 'mcpki' },
  },
  'mcp/claude-code.mcp.json': {
    description:
      'Claude Code project .mcp.json: the MCP server at --var url=… over HTTP (the certificate comes from mcp/claude-code.sh)',
    defaults: { mcpServer: 'mcpki' },
  },
  'mcp/claude-desktop.json': {
    description:
      'Claude Desktop through mcp-remote, trusting the mcpki root (NODE_EXTRA_CA_CERTS); mcp-remote sends NO client certificate, so it reaches only servers without requireClientCert',
    defaults: { url: 'https://{{serverName}}:8443{{mcpPath}}' },
  },
  'curl/mcp-call.sh': { description: 'shell script: initialize and list tools with curl over mTLS' },
  'mcpki.example.yaml': {
    description: 'an mcpki.yaml declaring local and ACME certificates, their targets and hooks (every key, commented)',
  },
  'systemd/mcpki.service': {
    description: 'systemd service: mcpki serve, the long-running renewal service (-c CONFIG)',
  },
  'systemd/mcpki-renew.service': {
    description: 'systemd oneshot: one mcpki renew pass, for hosts without the long-running service',
  },
  'systemd/mcpki-renew.timer': { description: 'systemd timer: run mcpki-renew.service twice a day' },
  'systemd/mcpki-crl.service': {
    description: 'systemd oneshot: publish a fresh CRL, then reload the proxy that reads it (--var reloadCommand=…)',
    defaults: { crlDays: '7', reloadCommand: '/bin/systemctl reload nginx' },
  },
  'systemd/mcpki-crl.timer': { description: 'systemd timer: run mcpki-crl.service daily', defaults: { crlDays: '7' } },
};
