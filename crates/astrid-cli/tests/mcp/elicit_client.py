"""Answers Astrid's questions through MCP elicitation (approval requests, and capsules' own
questions), with the official MCP Python SDK (the `mcp` package from PyPI) as the client of
`astrid mcp serve`.

Usage: elicit_client.py [--protocol VERSION] ASTRID_EXE HOME TOOL ARGS_JSON FIELD ANSWER...

Declares form elicitation, then calls TOOL with ARGS_JSON once per ANSWER. Without
--protocol the client uses the initialize handshake (`ClientSession`), where forms are
server-to-client requests; with `--protocol 2026-07-28` it is the SDK's `Client` pinned to
that version, where forms come back inside the call (`InputRequiredResult`) and the SDK
retries the call with the answer. Each form the
server sends during that call is answered with ANSWER: `decline`, `cancel`, or
`accept:VALUE` (the form's FIELD set to VALUE). Prints one JSON object per call, in a list,
with the tool result and every form seen (its message and the values FIELD offered); the
Rust test asserts.
"""

import asyncio
import json
import sys

import mcp.types as types
from mcp import Client, ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def texts(result):
    return [c.text for c in result.content if getattr(c, "type", None) == "text"]


def choices(schema, name):
    field = schema.get("properties", {}).get(name, {})
    if "oneOf" in field:
        return [c.get("const") for c in field["oneOf"]]
    return field.get("enum", [])


async def main():
    argv = sys.argv[1:]
    protocol = None
    if argv[0] == "--protocol":
        protocol, argv = argv[1], argv[2:]
    exe, home, tool, args, name = argv[:5]
    args = json.loads(args)
    answers = argv[5:]
    current = {"answer": None, "forms": []}

    async def on_elicit(context, params):
        schema = params.requested_schema
        if hasattr(schema, "model_dump"):
            schema = schema.model_dump(by_alias=True, exclude_none=True)
        current["forms"].append({"message": params.message, "choices": choices(schema, name)})
        answer = current["answer"]
        if answer.startswith("accept:"):
            return types.ElicitResult(action="accept", content={name: answer[7:]})
        return types.ElicitResult(action=answer)

    params = StdioServerParameters(command=exe, args=["--home", home, "mcp", "serve"])
    rounds = []

    def record(answer, result):
        rounds.append(
            {
                "answer": answer,
                "is_error": bool(result.is_error),
                "text": texts(result),
                "forms": current["forms"],
            }
        )

    if protocol is not None:
        async with Client(params, mode=protocol, elicitation_callback=on_elicit) as client:
            assert client.protocol_version == protocol, client.protocol_version
            for answer in answers:
                current["answer"] = answer
                current["forms"] = []
                record(answer, await client.call_tool(tool, args))
        print(json.dumps(rounds))
        return
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, elicitation_callback=on_elicit) as session:
            await session.initialize()
            for answer in answers:
                current["answer"] = answer
                current["forms"] = []
                record(answer, await session.call_tool(tool, args))
    print(json.dumps(rounds))


asyncio.run(main())
