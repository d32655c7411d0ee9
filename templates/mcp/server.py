"""An MCP server (FastMCP, Streamable HTTP) serving HTTPS itself with the mcpki certificate {{name}}.

Rendered by: mcpki template render mcp/server.py --cert {{name}}
Set up:      pip install mcp uvicorn
Run:         python3 server.py

FastMCP.run() takes no TLS settings, so this runs uvicorn itself with FastMCP's app. With client
certificates required, clients need one from the mcpki CA (sent with its chain), and revoked ones are
refused through the CRL, which "mcpki crl" must keep current. uvicorn reads the files at start: restart
the service after a renewal (in mcpki.yaml, hooks: { reload: [systemctl, restart, my-mcp] }).
"""
import ssl

import uvicorn

CERT_FILE = "{{fullchain}}"
KEY_FILE = "{{key}}"
CA_FILE = "{{ca}}"
CRL_FILE = "{{crl}}"
HOST = "{{listenHost}}"
PORT = int("{{listenPort}}")
MCP_PATH = "{{mcpPath}}"
REQUIRE_CLIENT_CERT = "{{requireClientCert}}" != "false"


def tls_settings() -> dict:
    """uvicorn's TLS options: the certificate, and the CA that client certificates must chain to."""
    settings = {
        "ssl_certfile": CERT_FILE,
        "ssl_keyfile": KEY_FILE,
        "ssl_ciphers": "ECDHE+AESGCM:ECDHE+CHACHA20",
    }
    if REQUIRE_CLIENT_CERT:
        settings.update(ssl_ca_certs=CA_FILE, ssl_cert_reqs=ssl.CERT_REQUIRED)
    return settings


def server_config(app, host: str = HOST, port: int = PORT) -> uvicorn.Config:
    """A loaded uvicorn.Config for `app`, its TLS context finished: TLS 1.2 at least, the CRL checked."""
    config = uvicorn.Config(app, host=host, port=port, **tls_settings())
    config.load()
    config.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
    if REQUIRE_CLIENT_CERT:
        # uvicorn has no CRL option: add the CRLs to the context it built, and check the client's own
        config.ssl.load_verify_locations(cafile=CRL_FILE)
        config.ssl.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return config


def mcp_app():
    """The MCP server's ASGI app (imported here, so the TLS settings above can be used without the mcp package)."""
    from mcp.server.fastmcp import FastMCP

    mcp = FastMCP("{{name}}", host=HOST, port=PORT, stateless_http=True, streamable_http_path=MCP_PATH)

    @mcp.tool()
    def echo(text: str) -> str:
        """Returns its text."""
        return text

    return mcp.streamable_http_app()


if __name__ == "__main__":
    uvicorn.Server(server_config(mcp_app())).run()
