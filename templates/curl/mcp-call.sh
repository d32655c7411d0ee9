#!/bin/sh
# Calls an MCP server (Streamable HTTP) with curl, presenting the mcpki client certificate {{name}} and
# trusting the mcpki root: initialize, then list the tools, then call TOOL with ARGUMENTS (JSON) if given.
# Rendered by: mcpki template render curl/mcp-call.sh --cert {{name}} --var url=https://HOST:PORT/mcp
# Usage: sh mcp-call.sh [URL [TOOL [ARGUMENTS]]]
set -eu

url=${1:-'{{url}}'}
tool=${2:-}
arguments=${3:-'{}'}
ca='{{ca}}'
cert='{{fullchain}}'
key='{{key}}'

headers=$(mktemp)
trap 'rm -f "$headers"' EXIT
session=

post() {
  if [ -n "$session" ]; then set -- -H "Mcp-Session-Id: $session" "$@"; fi
  curl --silent --show-error --fail-with-body --cacert "$ca" --cert "$cert" --key "$key" \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    "$@" "$url"
  echo
}

post -D "$headers" --data '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1.0.0"}}}'
session=$(tr -d '\r' <"$headers" | sed -n 's/^[Mm][Cc][Pp]-[Ss][Ee][Ss][Ss][Ii][Oo][Nn]-[Ii][Dd]: *//p')
post -H 'MCP-Protocol-Version: 2025-06-18' --data '{"jsonrpc":"2.0","method":"notifications/initialized"}' >/dev/null
post -H 'MCP-Protocol-Version: 2025-06-18' --data '{"jsonrpc":"2.0","id":2,"method":"tools/list"}'
if [ -n "$tool" ]; then
  post -H 'MCP-Protocol-Version: 2025-06-18' --data "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"$tool\",\"arguments\":$arguments}}"
fi
