#!/bin/sh
# Claude Code with the mcpki client certificate {{name}}, for MCP servers (Streamable HTTP) that require one.
# Rendered by: mcpki template render mcp/claude-code.sh --cert {{name}} --var url=https://HOST:PORT/mcp
# Run Claude Code through this script: sh claude-code.sh [claude arguments]. Add the server once with
#   sh claude-code.sh mcp add --transport http {{mcpServer}} {{url}}
# (or commit the .mcp.json from: mcpki template render mcp/claude-code.mcp.json --var url=…), then check it with
#   sh claude-code.sh mcp list          (the server shows "Connected")
# Claude Code presents CLAUDE_CODE_CLIENT_CERT and CLAUDE_CODE_CLIENT_KEY to HTTP MCP servers: the full chain,
# because servers verify the leaf and the intermediate. Its runtime ignores the system trust store:
# NODE_EXTRA_CA_CERTS must name the mcpki root before it starts, which this script does. To set them in your
# shell or a service instead, copy the three assignments and the export line.
# Claude Code's TLS library refuses a CA with IP address name constraints ("UNSUPPORTED_CONSTRAINT_TYPE: unsupported
# name constraint type"), which an mcpki CA has (127.0.0.0/8, ::1) unless made with "mcpki init --no-name-constraints".
NODE_EXTRA_CA_CERTS='{{ca}}'
CLAUDE_CODE_CLIENT_CERT='{{fullchain}}'
CLAUDE_CODE_CLIENT_KEY='{{key}}'
export NODE_EXTRA_CA_CERTS CLAUDE_CODE_CLIENT_CERT CLAUDE_CODE_CLIENT_KEY
exec "${CLAUDE:-claude}" "$@"
