#!/usr/bin/env python3
"""Verify an exported Astrid audit chain without Astrid's code.

Usage:
    astrid audit export --principal alice > alice.jsonl
    python3 verify_audit.py alice.jsonl --public-key "$(cat ~/.astrid/keys/runtime.pub)"

Needs only `pip install pynacl blake3`. The format is specified in AUDIT-FORMAT.md. Every
entry's canonical bytes are rebuilt from its fields (the exported `canonical` is checked
against them, not trusted), hashed with BLAKE3, linked to the previous hash, and its ed25519
signature over `canonical || hash` checked; then the signed head must vouch for the log's end.
Exit status 0 when intact, 1 with the first bad entry otherwise.
"""
import argparse
import json
import struct
import sys

import blake3
import nacl.exceptions
import nacl.signing

ENTRY_TAG = b"astrid-audit-entry-v1\x00"
HEAD_TAG = b"astrid-audit-head-v1\x00"
DECISIONS = {"allowed": 1, "denied": 2, "approved": 3, "rejected": 4, "recorded": 5}


def field(value: bytes) -> bytes:
    """One canonical field: u32 big-endian length, then the bytes."""
    return struct.pack(">I", len(value)) + value


def u64(n: int) -> bytes:
    return field(struct.pack(">Q", n))


def text(s: str) -> bytes:
    return field(s.encode("utf-8"))


def entry_canonical(e: dict) -> bytes:
    return (
        ENTRY_TAG
        + u64(e["seq"])
        + u64(e["time_ms"])
        + text(e["principal"])
        + text(e["capsule"])
        + text(e["action"])
        + text(e["resource"])
        + field(bytes([DECISIONS[e["decision"]]]))
        + text(e["outcome"])
        + field(bytes.fromhex(e["prev_hash"]))
    )


def head_canonical(h: dict) -> bytes:
    return (
        HEAD_TAG
        + u64(h["generation"])
        + text(h["principal"])
        + field(bytes.fromhex(h["public_key"]))
        + u64(h["seq"])
        + field(bytes.fromhex(h["entry_hash"]))
        + u64(h["end_offset"])
    )


class Bad(Exception):
    pass


def verify(lines, key: nacl.signing.VerifyKey, require_head: bool = True) -> str:
    expected, prev, principal = 1, bytes(32), None
    hashes = {}
    head = None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        rec = json.loads(line)
        if rec["type"] == "head":
            head = rec
            continue
        if head is not None:
            raise Bad(f"line {number}: entry after the head line")
        seq = rec["seq"]
        where = f"entry {expected}"
        if seq != expected:
            raise Bad(f"{where}: found entry {seq} in its place (deleted, reordered or inserted)")
        principal = principal or rec["principal"]
        if rec["principal"] != principal:
            raise Bad(f"{where}: belongs to principal {rec['principal']}")
        canonical = entry_canonical(rec)
        if canonical.hex() != rec["canonical"]:
            raise Bad(f"{where}: fields do not match the exported canonical bytes")
        if bytes.fromhex(rec["prev_hash"]) != prev:
            raise Bad(f"{where}: prev_hash does not match the previous entry")
        digest = blake3.blake3(canonical).digest()
        if digest.hex() != rec["hash"]:
            raise Bad(f"{where}: hash is not BLAKE3 of the canonical bytes")
        try:
            key.verify(canonical + digest, bytes.fromhex(rec["signature"]))
        except nacl.exceptions.BadSignatureError:
            raise Bad(f"{where}: signature does not verify") from None
        hashes[seq] = digest
        prev, expected = digest, expected + 1
    last = expected - 1
    if head is None:
        if require_head:
            raise Bad("no head line: truncation of the tail cannot be ruled out")
        return f"OK: {last} entries (no head checked)"
    try:
        key.verify(head_canonical(head), bytes.fromhex(head["signature"]))
    except nacl.exceptions.BadSignatureError:
        raise Bad("head: signature does not verify") from None
    if principal is not None and head["principal"] != principal:
        raise Bad(f"head: belongs to principal {head['principal']}")
    if head["seq"] > last:
        raise Bad(f"entry {last + 1}: missing: the log ends at entry {last} "
                  f"but the signed head records {head['seq']}")
    if head["seq"] > 0 and hashes[head["seq"]].hex() != head["entry_hash"]:
        raise Bad(f"entry {head['seq']}: does not match the signed head")
    return f"OK: {last} entries, signed head at entry {head['seq']}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("export", help="JSON lines from `astrid audit export` ('-' for stdin)")
    ap.add_argument("--public-key", required=True, help="runtime public key, 64 hex characters")
    ap.add_argument("--no-head", action="store_true", help="accept an export without a head line")
    args = ap.parse_args()
    key = nacl.signing.VerifyKey(bytes.fromhex(args.public_key.strip()))
    stream = sys.stdin if args.export == "-" else open(args.export, encoding="utf-8")
    with stream:
        try:
            print(verify(stream, key, require_head=not args.no_head))
            return 0
        except Bad as bad:
            print(f"FAIL {bad}")
            return 1


if __name__ == "__main__":
    sys.exit(main())
