"""An MCP server (Python SDK 2.x, Streamable HTTP) serving HTTPS itself with the mcpki certificate {{name}}.

Rendered by: mcpki template render mcp/server.py --cert {{name}}
Set up:      python3 -m venv .venv && .venv/bin/pip install "mcp>=2" uvicorn
Run:         .venv/bin/python server.py          (MCP_HOST and MCP_PORT override the address)

mcp 2.x renamed FastMCP to MCPServer (from mcp.server.mcpserver import MCPServer). Its run() takes no TLS
settings, so this runs uvicorn itself with the server's Streamable HTTP app, stateless: every POST stands
alone (the 2026-07-28 single-exchange protocol, and the older initialize handshake without a session).

With client certificates required, clients need one from the mcpki CA (sent with its chain), and revoked
ones are refused through the CRL, which "mcpki crl" must keep current. Tool handlers see the verified
client certificate through client_identity(ctx): its SPIFFE ID (SAN URI), e-mail, common name, serial and
RFC 8705 thumbprint (x5t#S256). uvicorn reads the files at start: restart the service after a renewal (in
mcpki.yaml, hooks: { reload: [systemctl, restart, my-mcp] }).
"""
import base64
import hashlib
import os
import ssl

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

CERT_FILE = "{{fullchain}}"
KEY_FILE = "{{key}}"
CA_FILE = "{{ca}}"
CRL_FILE = "{{crl}}"
HOST = os.environ.get("MCP_HOST", "{{listenHost}}")
PORT = int(os.environ.get("MCP_PORT", "{{listenPort}}"))
MCP_PATH = "{{mcpPath}}"
REQUIRE_CLIENT_CERT = os.environ.get("MCP_REQUIRE_CLIENT_CERT", "{{requireClientCert}}") != "false"


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


def peer_identity(ssl_object) -> dict | None:
    """The identity in the client certificate of a TLS connection, once the handshake verified it.

    id is the SPIFFE ID (first SAN URI), else the first SAN e-mail, else the subject's common name.
    thumbprint is RFC 8705's x5t#S256 (base64url SHA-256 of the DER certificate), for certificate-bound tokens.
    """
    if ssl_object is None:
        return None
    cert = ssl_object.getpeercert()
    if not cert:
        return None  # no certificate, or one the context did not verify
    der = ssl_object.getpeercert(binary_form=True)
    names: dict[str, list[str]] = {}
    for kind, value in cert.get("subjectAltName", ()):
        names.setdefault(kind, []).append(value)
    cn = next((value for rdn in cert.get("subject", ()) for key, value in rdn if key == "commonName"), None)
    uris, emails = names.get("URI", []), names.get("email", [])
    return {
        "id": (uris or emails or [cn])[0],
        "uri": uris,
        "email": emails,
        "cn": cn,
        "serial": cert.get("serialNumber"),
        "not_after": cert.get("notAfter"),
        "thumbprint": base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode("ascii"),
    }


def with_client_identity(app, identity: dict | None):
    """The ASGI app, with the connection's verified client identity in scope["state"]["client_identity"]."""

    async def wrapped(scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            scope.setdefault("state", {})["client_identity"] = identity
        await app(scope, receive, send)

    return wrapped


class ClientCertificateH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, passing each connection's verified client certificate to the app.

    uvicorn does not put the peer certificate into the ASGI scope; asyncio calls connection_made after the
    TLS handshake, so the certificate is known (and was verified, CRL included) by then.
    """

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.app = with_client_identity(self.app, peer_identity(transport.get_extra_info("ssl_object")))


def server_config(app, host: str = HOST, port: int = PORT) -> uvicorn.Config:
    """A loaded uvicorn.Config for `app`, its TLS context finished: TLS 1.2 at least, the CRL checked."""
    config = uvicorn.Config(app, host=host, port=port, http=ClientCertificateH11Protocol, **tls_settings())
    config.load()
    config.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
    if REQUIRE_CLIENT_CERT:
        # uvicorn has no CRL option: add the CRLs to the context it built, and check the client's own
        config.ssl.load_verify_locations(cafile=CRL_FILE)
        config.ssl.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return config


def client_identity(ctx) -> dict | None:
    """In a tool handler: the verified client certificate of the connection this request came on (see peer_identity)."""
    request = ctx.request_context.request
    state = getattr(request, "scope", {}).get("state") or {}
    return state.get("client_identity")


def mcp_app():
    """The MCP server's ASGI app (imported here, so the TLS settings above can be used without the mcp package)."""
    from mcp.server.mcpserver import Context, MCPServer

    mcp = MCPServer("{{name}}", version="1.0.0")

    @mcp.tool()
    def whoami(ctx: Context) -> dict:
        """The verified client certificate this request came with: id (SPIFFE ID, e-mail or common name), uri, email, cn, serial, thumbprint."""
        return client_identity(ctx) or {"id": None}

    @mcp.tool()
    def echo(text: str) -> str:
        """Returns its text."""
        return text

    return mcp.streamable_http_app(streamable_http_path=MCP_PATH, stateless_http=True, host=HOST)


if __name__ == "__main__":
    uvicorn.Server(server_config(mcp_app())).run()
