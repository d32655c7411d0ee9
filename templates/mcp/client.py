"""An MCP client (Python SDK 2.x, Streamable HTTP) that trusts the mcpki root and presents the client certificate {{name}}.

Rendered by: mcpki template render mcp/client.py --cert {{name}} --var url=https://HOST:PORT/mcp
Set up:      python3 -m venv .venv && .venv/bin/pip install "mcp>=2"
Run:         .venv/bin/python client.py [URL] [TOOL [JSON-ARGUMENTS]]    (MCP_URL overrides the URL too)

It lists the server's tools and calls TOOL (default: whoami when the server has it) with JSON-ARGUMENTS.
mcp 2.x speaks HTTP through httpx2 (installed with it): the transport is given an httpx2.AsyncClient whose
SSL context trusts the mcpki root (not the system store) and carries the client certificate with its chain.
The same context works for httpx (httpx.AsyncClient(verify=tls_context())) and for any ssl-based client.
The files are read once: a long-running client builds a new context after mcpki renews the certificate.
"""
import asyncio
import json
import os
import ssl
import sys

CA_FILE = "{{ca}}"
CERT_FILE = "{{fullchain}}"
KEY_FILE = "{{key}}"
SERVER_URL = os.environ.get("MCP_URL", "{{url}}")


def tls_context() -> ssl.SSLContext:
    """TLS 1.2 at least, the server checked against the mcpki root, our certificate and key offered."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=CA_FILE)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(CERT_FILE, KEY_FILE)
    return context


def text_of(result) -> str:
    return "".join(getattr(part, "text", "") for part in result.content)


async def main(url: str, tool: str | None, arguments: dict) -> None:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    timeout = httpx2.Timeout(30.0, read=300.0)
    async with httpx2.AsyncClient(verify=tls_context(), timeout=timeout) as http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            tools = [t.name for t in (await client.list_tools()).tools]
            print(f"tools: {', '.join(tools)}")
            if tool is None and "whoami" in tools:
                tool = "whoami"
            if tool is not None:
                result = await client.call_tool(tool, arguments)
                if result.is_error:
                    raise RuntimeError(f"{tool} failed: {text_of(result)}")
                print(f"{tool}: {text_of(result)}")


def refused(error: BaseException, seen: set | None = None) -> BaseException | None:
    """The TLS or connection error inside an SDK error (it arrives wrapped in exception groups)."""
    seen = set() if seen is None else seen
    if id(error) in seen:
        return None
    seen.add(id(error))
    if isinstance(error, (ssl.SSLError, ConnectionError)) or type(error).__name__ in ("ConnectError", "ReadError", "RemoteProtocolError"):
        return error
    for inner in (*getattr(error, "exceptions", ()), error.__cause__, error.__context__):
        if inner is not None and (found := refused(inner, seen)):
            return found
    return None


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else SERVER_URL
    tool = sys.argv[2] if len(sys.argv) > 2 else None
    arguments = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    try:
        asyncio.run(main(url, tool, arguments))
    except Exception as error:  # noqa: BLE001 - one line for the user, not a traceback
        cause = refused(error)
        if cause is not None:
            # Under TLS 1.3 the server checks the client certificate after the handshake: a refusal
            # reaches the client only as a closed connection or a TLS alert.
            detail = f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__
            print(f"{url}: the connection failed ({detail}): was the client certificate refused (not from its CA, revoked, expired), or is the server not trusted by {CA_FILE}?", file=sys.stderr)
        else:
            print(f"{type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
