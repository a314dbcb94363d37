#!/usr/bin/env python3
"""Verify an exported Astrid audit chain without Astrid's code.

Usage:
    astrid --principal alice audit export > alice.jsonl
    python3 verify_audit.py alice.jsonl --principal alice \
        --public-key "$(cat ~/.astrid/keys/runtime.pub)" [--witness SEQ:HASH]

Needs only `pip install pynacl blake3`. The format is specified in AUDIT-FORMAT.md. Every
entry's canonical bytes are rebuilt from its fields (the exported `canonical` is checked
against them, not trusted), hashed with BLAKE3, linked to the previous hash, and its ed25519
signature over `canonical || hash` checked; every entry and the head must name the principal
you expect (one runtime key signs every principal's chain, so a chain copied from another
principal verifies cryptographically: only this check tells it apart); then the signed head
must vouch for the log's end (seq, hash and byte offset), and the head slots must not show a
rollback. With --witness, the chain must still contain the entry recorded earlier.
Exit status 0 when intact, 1 with the first bad entry otherwise.
"""
import argparse
import json
import struct
import sys

import blake3
import nacl.exceptions
import nacl.signing

LOG_HEADER = 16  # the magic "ASTRID-AUDIT-v1\n" at the start of audit.log
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


def verify(lines, key: nacl.signing.VerifyKey, principal: str, require_head: bool = True,
           witness=None) -> str:
    expected, prev = 1, bytes(32)
    hashes, ends = {0: bytes(32)}, {0: LOG_HEADER}
    end = LOG_HEADER
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
        if rec["principal"] != principal:
            raise Bad(f"{where}: belongs to principal `{rec['principal']}`, not `{principal}` "
                      "(a chain copied from another principal?)")
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
        end += 4 + len(canonical) + 64 + 4  # the record in audit.log: len || payload || crc
        hashes[seq], ends[seq] = digest, end
        prev, expected = digest, expected + 1
    last = expected - 1
    if head is None:
        if require_head:
            raise Bad("no head line: truncation of the tail cannot be ruled out")
        return check_witness(witness, hashes, last, f"OK: {last} entries (no head checked)")
    try:
        key.verify(head_canonical(head), bytes.fromhex(head["signature"]))
    except nacl.exceptions.BadSignatureError:
        raise Bad("head: signature does not verify") from None
    if head["principal"] != principal:
        raise Bad(f"head: belongs to principal `{head['principal']}`, not `{principal}` "
                  "(a chain copied from another principal?)")
    if head["seq"] > last:
        raise Bad(f"entry {last + 1}: missing: the log ends at entry {last} "
                  f"but the signed head records {head['seq']}")
    if hashes[head["seq"]].hex() != head["entry_hash"]:
        raise Bad(f"entry {head['seq']}: does not match the signed head")
    if ends[head["seq"]] != head["end_offset"]:
        raise Bad(f"entry {head['seq']}: ends at byte {ends[head['seq']]} "
                  f"but the signed head records byte {head['end_offset']}")
    check_slots(head, last)
    return check_witness(witness, hashes, last,
                         f"OK: {last} entries of `{principal}`, signed head at entry {head['seq']}")


def check_slots(head: dict, last: int) -> None:
    """The other slot of audit.head, as the export describes it (AUDIT-FORMAT.md, head file)."""
    other = head.get("other_slot")
    if other is None:
        raise Bad("head: the export does not describe the other head slot")
    if other == "intact" and head.get("other_generation") != head["generation"] - 1:
        raise Bad("head: the slots hold generations "
                  f"{head.get('other_generation')} and {head['generation']}, not consecutive")
    if other == "blank" and head["generation"] != 1:
        raise Bad(f"head: the other slot is blank beside generation {head['generation']}: "
                  "a newer head was erased")
    if other == "damaged" and last == head["seq"]:
        raise Bad(f"head: the newest head slot is damaged and the log ends exactly at the older "
                  f"head (generation {head['generation']}, entry {head['seq']}): the newest "
                  "head and the entries after it may have been removed")


def check_witness(witness, hashes, last: int, ok: str) -> str:
    if witness is None:
        return ok
    seq, digest = witness
    if seq > last:
        raise Bad(f"entry {seq}: the witness recorded entry {seq} but the chain ends at "
                  f"entry {last}: rolled back or replaced")
    if hashes[seq] != digest:
        raise Bad(f"entry {seq}: is not the entry the witness recorded: the chain was replaced")
    return f"{ok}, witness {seq} found"


def parse_witness(text: str):
    seq, _, digest = text.strip().partition(":")
    raw = bytes.fromhex(digest)
    if len(raw) != 32:
        raise ValueError("witness hash must be 64 hex characters")
    return int(seq), raw


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("export", help="JSON lines from `astrid audit export` ('-' for stdin)")
    ap.add_argument("--public-key", required=True, help="runtime public key, 64 hex characters")
    ap.add_argument("--principal", required=True,
                    help="the principal whose chain this must be (e.g. default)")
    ap.add_argument("--witness", help="SEQ:HASH printed by an earlier `astrid audit verify`")
    ap.add_argument("--no-head", action="store_true", help="accept an export without a head line")
    args = ap.parse_args()
    witness = parse_witness(args.witness) if args.witness else None
    key = nacl.signing.VerifyKey(bytes.fromhex(args.public_key.strip()))
    stream = sys.stdin if args.export == "-" else open(args.export, encoding="utf-8")
    with stream:
        try:
            print(verify(stream, key, args.principal, require_head=not args.no_head,
                         witness=witness))
            return 0
        except Bad as bad:
            print(f"FAIL {bad}")
            return 1


if __name__ == "__main__":
    sys.exit(main())
