"""Drives `astrid mcp serve` with the official MCP Python SDK (the `mcp` package from PyPI).

Usage: serve_client.py ASTRID_EXE HOME ALLOWED_FILE DENIED_FILE INSTALL_DIR|-

Initializes, lists the tools, calls fs_read on a file a token covers and on one none does,
then installs another capsule with the CLI and waits for notifications/tools/list_changed and
the new tool in tools/list (skipped with `-`). With ASTRID_DEVICE_TOKEN in the environment
the server is started with that device token (and the install runs as the operator).
Prints one JSON object with what it saw; the Rust test asserts.
"""

import asyncio
import json
import os
import subprocess
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def texts(result):
    return [c.text for c in result.content if getattr(c, "type", None) == "text"]


async def main():
    exe, home, allowed, denied, install_dir = sys.argv[1:6]
    changed = asyncio.Event()

    async def on_message(message):
        if getattr(message, "method", None) == "notifications/tools/list_changed":
            changed.set()

    device = os.environ.pop("ASTRID_DEVICE_TOKEN", None)
    env = {"ASTRID_DEVICE_TOKEN": device} if device else None
    params = StdioServerParameters(command=exe, args=["--home", home, "mcp", "serve"], env=env)
    out = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, message_handler=on_message) as session:
            init = await session.initialize()
            out["server_name"] = init.server_info.name
            out["list_changed_capability"] = bool(
                init.capabilities.tools and init.capabilities.tools.list_changed
            )
            tools = await session.list_tools()
            out["tools"] = sorted(t.name for t in tools.tools)
            fs_read = next(t for t in tools.tools if t.name == "fs_read")
            out["fs_read_schema_required"] = fs_read.input_schema.get("required", [])

            ok = await session.call_tool("fs_read", {"path": allowed})
            out["allowed"] = {"is_error": bool(ok.is_error), "text": texts(ok)}
            no = await session.call_tool("fs_read", {"path": denied})
            out["denied"] = {"is_error": bool(no.is_error), "text": texts(no)}

            if install_dir == "-":
                print(json.dumps(out))
                return
            installed = subprocess.run(
                [exe, "--home", home, "capsule", "install", install_dir],
                capture_output=True,
                text=True,
            )
            out["install_exit"] = installed.returncode
            out["install_stderr"] = installed.stderr[-2000:]
            await asyncio.wait_for(changed.wait(), timeout=120)
            out["list_changed_seen"] = True
            again = await session.list_tools()
            out["tools_after_install"] = sorted(t.name for t in again.tools)
    print(json.dumps(out))


asyncio.run(main())
