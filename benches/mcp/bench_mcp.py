"""One MCP client, several stdio servers, the same work: N sequential tools/call of a small
file read. Prints one JSON line per server and a table.

Usage: bench_mcp.py N FILE NAME:TOOL:PID_FILE_OR_-:COMMAND... [-- more servers]
Each server is given as one argument `NAME|TOOL|EXTRA_PID_FILE|CMD ARG...` (fields separated
by `|`, the command split on spaces). EXTRA_PID_FILE names a process whose RSS counts too
(the Astrid daemon serving `astrid mcp serve`), or `-`.

Measured per server: start to first tools/list answered (spawn, initialize, list), p50 and
p99 of N sequential tools/call (client send to result received), and resident memory (VmRSS)
of the server process and, for Astrid, of the daemon, read after the calls.
"""

import asyncio
import json
import os
import statistics
import sys
import time

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def descendants(pid):
    """Every process below `pid` (the MCP SDK spawns the server; node may fork)."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def pct(sorted_ms, p):
    k = max(0, min(len(sorted_ms) - 1, round(p / 100 * (len(sorted_ms) - 1))))
    return sorted_ms[k]


async def run(n, path, name, tool, pid_file, cmd):
    params = StdioServerParameters(command=cmd[0], args=cmd[1:], env=dict(os.environ))
    t0 = time.perf_counter()
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            start_ms = (time.perf_counter() - t0) * 1000
            assert any(t.name == tool for t in tools.tools), f"{name}: no tool {tool}"
            lat = []
            for _ in range(n):
                t = time.perf_counter()
                r = await session.call_tool(tool, {"path": path})
                lat.append((time.perf_counter() - t) * 1000)
                if r.is_error:
                    raise SystemExit(f"{name}: {tool} failed: {r.content}")
            server_rss = sum(rss_kib(p) for p in descendants(os.getpid()))
            extra_rss = 0
            if pid_file != "-":
                with open(pid_file) as f:
                    extra_rss = rss_kib(int(f.read().split()[0]))
    lat.sort()
    return {
        "server": name,
        "n": n,
        "start_to_first_list_ms": round(start_ms, 1),
        "p50_ms": round(pct(lat, 50), 3),
        "p99_ms": round(pct(lat, 99), 3),
        "mean_ms": round(statistics.mean(lat), 3),
        "server_rss_mib": round(server_rss / 1024, 1),
        "daemon_rss_mib": round(extra_rss / 1024, 1) if pid_file != "-" else None,
    }


async def main():
    n = int(sys.argv[1])
    path = sys.argv[2]
    rows = []
    for spec in sys.argv[3:]:
        name, tool, pid_file, cmd = spec.split("|", 3)
        rows.append(await run(n, path, name, tool, pid_file, cmd.split(" ")))
        print(json.dumps(rows[-1]), flush=True)
    print()
    print(f"{'server':<28} {'start→list':>10} {'p50':>8} {'p99':>8} {'mean':>8} {'RSS srv':>8} {'RSS daemon':>10}")
    for r in rows:
        d = "-" if r["daemon_rss_mib"] is None else f"{r['daemon_rss_mib']} MiB"
        print(
            f"{r['server']:<28} {r['start_to_first_list_ms']:>8} ms {r['p50_ms']:>5} ms"
            f" {r['p99_ms']:>5} ms {r['mean_ms']:>5} ms {r['server_rss_mib']:>4} MiB {d:>10}"
        )


asyncio.run(main())
