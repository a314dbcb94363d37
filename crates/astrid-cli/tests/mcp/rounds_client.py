"""Drives the input rounds of protocol 2026-07-28 by hand against `astrid mcp serve`, with
the official MCP Python SDK (`mcp` from PyPI), to show that `requestState` opens nothing
by itself: only the state of a waiting call, retried once, for the same tool.

Usage: rounds_client.py ASTRID_EXE HOME TOOL ARGS_JSON OTHER_TOOL

Calls TOOL with ARGS_JSON and expects an `InputRequiredResult` (an approval form). Then
retries: with a made-up state, with the real state under OTHER_TOOL, with the real state
(allow once, and so for every further round of the call), and with each used state again. Prints one JSON object per step; the Rust test
asserts.
"""

import asyncio
import json
import sys

import mcp.types as types
from mcp import Client, StdioServerParameters

ALLOW = {"astrid": types.ElicitResult(action="accept", content={"decision": "allow-once"})}


def outcome(result):
    if isinstance(result, types.InputRequiredResult):
        return {"input_required": sorted((result.input_requests or {}).keys())}
    return {
        "is_error": bool(result.is_error),
        "text": [c.text for c in result.content if getattr(c, "type", None) == "text"],
    }


async def main():
    exe, home, tool, args, other = sys.argv[1:6]
    args = json.loads(args)
    asked = []

    async def on_elicit(context, params):
        # The SDK's own driver is not used here; nothing should reach this.
        asked.append(params.message)
        return types.ElicitResult(action="decline")

    params = StdioServerParameters(command=exe, args=["--home", home, "mcp", "serve"])
    steps = {}
    async with Client(params, mode="2026-07-28", elicitation_callback=on_elicit) as client:
        session = client.session

        async def call(name, state, responses):
            return await session.call_tool(
                name,
                args,
                input_responses=responses,
                request_state=state,
                allow_input_required=True,
            )

        first = await call(tool, None, None)
        steps["first"] = outcome(first)
        state = first.request_state
        steps["forged"] = outcome(await call(tool, "00" * 16, ALLOW))
        steps["other_tool"] = outcome(await call(other, state, ALLOW))
        # tool-fs's read is two effects (a stat, then the read), each asked for: answer
        # every round of this call.
        current, states = await call(tool, state, ALLOW), [state]
        while isinstance(current, types.InputRequiredResult):
            states.append(current.request_state)
            current = await call(tool, current.request_state, ALLOW)
        steps["answered"] = outcome(current)
        steps["rounds"] = len(states)
        steps["replayed"] = [outcome(await call(tool, s, ALLOW)) for s in states]
    steps["callback"] = asked
    print(json.dumps(steps))


asyncio.run(main())
