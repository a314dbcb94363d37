"""Answers Astrid's approval requests through MCP elicitation, with the official MCP Python SDK
(the `mcp` package from PyPI) as the client of `astrid mcp serve`.

Usage: elicit_client.py ASTRID_EXE HOME PATH ANSWER...

Declares form elicitation, then calls fs_read on PATH once per ANSWER. Each form the server
sends during that call is answered with ANSWER: `decline`, `cancel`, or `accept:VALUE` (the
form's `decision` field set to VALUE). Prints one JSON object per call, in a list, with the
tool result and every form seen (its message and the choices it offered); the Rust test asserts.
"""

import asyncio
import json
import sys

import mcp.types as types
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def texts(result):
    return [c.text for c in result.content if getattr(c, "type", None) == "text"]


def choices(schema):
    field = schema.get("properties", {}).get("decision", {})
    if "oneOf" in field:
        return [c.get("const") for c in field["oneOf"]]
    return field.get("enum", [])


async def main():
    exe, home, path = sys.argv[1:4]
    answers = sys.argv[4:]
    current = {"answer": None, "forms": []}

    async def on_elicit(context, params):
        schema = params.requested_schema
        if hasattr(schema, "model_dump"):
            schema = schema.model_dump(by_alias=True, exclude_none=True)
        current["forms"].append({"message": params.message, "choices": choices(schema)})
        answer = current["answer"]
        if answer.startswith("accept:"):
            return types.ElicitResult(action="accept", content={"decision": answer[7:]})
        return types.ElicitResult(action=answer)

    params = StdioServerParameters(command=exe, args=["--home", home, "mcp", "serve"])
    rounds = []
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, elicitation_callback=on_elicit) as session:
            await session.initialize()
            for answer in answers:
                current["answer"] = answer
                current["forms"] = []
                result = await session.call_tool("fs_read", {"path": path})
                rounds.append(
                    {
                        "answer": answer,
                        "is_error": bool(result.is_error),
                        "text": texts(result),
                        "forms": current["forms"],
                    }
                )
    print(json.dumps(rounds))


asyncio.run(main())
