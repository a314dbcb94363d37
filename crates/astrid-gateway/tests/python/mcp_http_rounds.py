"""Approvals within calls over the gateway's `/mcp` (protocol 2026-07-28 input rounds), with
the official MCP Python SDK's `Client` pinned to that version over streamable HTTP.

Usage: mcp_http_rounds.py URL TOOL ARGS_JSON, with two device tokens of the same principal in
ASTRID_DEVICE_TOKEN and OTHER_DEVICE_TOKEN. The first device calls TOOL (which needs a
person's approval) and gets a form back inside the call; the second device tries to answer
that call with its `requestState`; the first answers every round (allow once); then the first
calls again through the SDK's own round driver and declines the form. Prints one JSON object
of what each step returned; the Rust test (crates/astrid-daemon/tests/gateway_mcp.rs) asserts.
"""

import asyncio
import json
import os
import sys

import mcp.types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

ALLOW = {"astrid": types.ElicitResult(action="accept", content={"decision": "allow-once"})}


def outcome(result):
    if isinstance(result, types.InputRequiredResult):
        return {"input_required": sorted((result.input_requests or {}).keys())}
    return {
        "is_error": bool(result.is_error),
        "text": [c.text for c in result.content if getattr(c, "type", None) == "text"],
    }


async def main():
    url, tool, args = sys.argv[1:4]
    args = json.loads(args)
    forms = []

    async def decline(context, params):
        forms.append(params.message)
        return types.ElicitResult(action="decline")

    def client(http):
        transport = streamable_http_client(url, http_client=http)
        return Client(transport, mode="2026-07-28", elicitation_callback=decline)

    def bearer(name):
        return {"Authorization": "Bearer " + os.environ[name]}

    steps = {}
    async with create_mcp_http_client(headers=bearer("ASTRID_DEVICE_TOKEN")) as http_a, \
            create_mcp_http_client(headers=bearer("OTHER_DEVICE_TOKEN")) as http_b:
        async with client(http_a) as a, client(http_b) as b:

            async def call(session, state, responses):
                return await session.call_tool(
                    tool,
                    args,
                    input_responses=responses,
                    request_state=state,
                    allow_input_required=True,
                )

            first = await call(a.session, None, None)
            steps["first"] = outcome(first)
            state = first.request_state
            # Another device of the same principal holding the state cannot answer for it.
            steps["other_device"] = outcome(await call(b.session, state, ALLOW))
            current, rounds = await call(a.session, state, ALLOW), 1
            while isinstance(current, types.InputRequiredResult):
                rounds += 1
                current = await call(a.session, current.request_state, ALLOW)
            steps["answered"] = outcome(current)
            steps["rounds"] = rounds
            # The SDK's own driver: the form reaches the callback, which declines.
            steps["declined"] = outcome(await a.call_tool(tool, args))
            steps["declined_forms"] = forms
    print(json.dumps(steps))


asyncio.run(main())
