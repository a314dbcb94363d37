"""Drives the gateway's `/mcp` with the official MCP Python SDK's streamable HTTP client.

Usage: mcp_http_client.py URL ALLOWED_FILE DENIED_FILE, with the device token in
ASTRID_DEVICE_TOKEN (sent as `Authorization: Bearer`). Initializes, lists the tools and, if
fs_read is offered, calls it on a file a capability token covers and on one none does;
otherwise calls it anyway and reports the error. Prints one JSON object; the Rust test asserts.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def texts(result):
    return [c.text for c in result.content if getattr(c, "type", None) == "text"]


async def call(session, path):
    try:
        r = await session.call_tool("fs_read", {"path": path})
        return {"is_error": bool(r.is_error), "text": texts(r)}
    except Exception as e:  # a protocol-level error (e.g. an unknown tool)
        return {"protocol_error": str(e)}


async def main():
    url, allowed, denied = sys.argv[1:4]
    headers = {"Authorization": "Bearer " + os.environ["ASTRID_DEVICE_TOKEN"]}
    out = {}
    async with create_mcp_http_client(headers=headers) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                out["server_name"] = init.server_info.name
                out["protocol"] = str(init.protocol_version)
                tools = await session.list_tools()
                out["tools"] = sorted(t.name for t in tools.tools)
                out["allowed"] = await call(session, allowed)
                out["denied"] = await call(session, denied)
    print(json.dumps(out))


asyncio.run(main())
