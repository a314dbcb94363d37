"""Approvals put to a handshake-era client over the gateway's `/mcp`: the official MCP Python
SDK's `ClientSession` (which negotiates a protocol before 2026-07-28, so the server gives it a
session) over streamable HTTP, with an elicitation callback.

Usage: mcp_http_session.py URL FIRST_FILE SECOND_FILE READY_FILE, with the device token in
ASTRID_DEVICE_TOKEN. Calls fs_read on FIRST_FILE and allows once every form that call raises,
then on SECOND_FILE and declines. Then creates READY_FILE, waits (up to 60 s) for
notifications/tools/list_changed, which the Rust test causes by changing the principal's
capsules once it sees the file, and lists the tools again. Prints one JSON object of what each
step returned and the forms' messages; the Rust test (crates/astrid-daemon/tests/gateway_mcp.rs)
asserts.
"""

import asyncio
import json
import os
import sys

import mcp.types as types
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def outcome(result):
    return {
        "is_error": bool(result.is_error),
        "text": [c.text for c in result.content if getattr(c, "type", None) == "text"],
    }


async def main():
    url, first, second, ready = sys.argv[1:5]
    changed = asyncio.Event()

    async def on_message(message):
        if getattr(message, "method", None) == "notifications/tools/list_changed":
            changed.set()

    headers = {"Authorization": "Bearer " + os.environ["ASTRID_DEVICE_TOKEN"]}
    answer = {"action": "accept", "content": {"decision": "allow-once"}}
    forms = {"allowed": [], "declined": []}
    phase = {"name": "allowed"}

    async def elicit(context, params):
        forms[phase["name"]].append(params.message)
        return types.ElicitResult(**answer)

    out = {}
    async with create_mcp_http_client(headers=headers) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(
                read, write, elicitation_callback=elicit, message_handler=on_message
            ) as session:
                init = await session.initialize()
                out["protocol"] = str(init.protocol_version)
                out["list_changed_capability"] = bool(
                    init.capabilities.tools and init.capabilities.tools.list_changed
                )
                out["tools"] = sorted(t.name for t in (await session.list_tools()).tools)
                out["allowed"] = outcome(await session.call_tool("fs_read", {"path": first}))
                phase["name"] = "declined"
                answer.clear()
                answer["action"] = "decline"
                out["declined"] = outcome(await session.call_tool("fs_read", {"path": second}))
                open(ready, "w").close()
                try:
                    await asyncio.wait_for(changed.wait(), 60)
                    out["list_changed_seen"] = True
                except asyncio.TimeoutError:
                    out["list_changed_seen"] = False
                out["tools_after"] = sorted(t.name for t in (await session.list_tools()).tools)
    out["forms"] = forms
    print(json.dumps(out))


asyncio.run(main())
