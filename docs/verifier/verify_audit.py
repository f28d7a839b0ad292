#!/usr/bin/env python3
"""A stand-alone verifier of a facegate audit log — no facegate code, only the spec.

It exists to show that the published format (docs/rights.md) is enough: a
court, a notary or a resident's lawyer can check a log, its signed
checkpoints and an erasure receipt with Python's standard library and the
`cryptography` package (for Ed25519), reading this one file.

    python3 verify_audit.py log.jsonl checkpoints.jsonl operator-public.pem [receipt.json]

Exit status 0: everything verifies. 1: something does not (each problem printed).
2: the arguments or files cannot be used (one "Error: …" line).
"""

import base64
import hashlib
import json
import re
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

GENESIS = "0" * 64
DOMAIN = b"facegate/audit/subject/v1\x00"


def canonical(doc):
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def load_keys(path):
    data = open(path, "rb").read()
    keys = {}
    for block in re.findall(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", data, re.S):
        key = serialization.load_pem_public_key(block)
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        keys[sha256(raw)[:32]] = key
    return keys


def signed_by(keys, key_id, signature_b64, message):
    key = keys.get(key_id)
    if key is None:
        return False
    try:
        key.verify(base64.b64decode(signature_b64), message)
        return True
    except (InvalidSignature, ValueError):
        return False


USAGE = "usage: python3 verify_audit.py LOG CHECKPOINTS PUBLIC_KEY [RECEIPT]"


def main(argv):
    if len(argv) not in (4, 5):
        print(f"Error: {USAGE}", file=sys.stderr)
        return 2
    try:
        return verify(argv)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # A file that is missing, not JSON, or not in the published format.
        print(f"Error: cannot verify: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


def verify(argv):
    log_path, cp_path, key_path = argv[1:4]
    receipt = json.load(open(argv[4], encoding="utf-8")) if len(argv) > 4 else None
    keys = load_keys(key_path)
    problems = []

    # 1. The chain: each line is canonical, hashes to its "hash", links to the one before.
    entries = []
    prev = GENESIS
    for n, raw in enumerate(open(log_path, "rb").read().splitlines(), start=1):
        entry = json.loads(raw)
        body = {k: v for k, v in entry.items() if k != "hash"}
        if raw != canonical(entry):
            problems.append(f"line {n}: not in canonical form")
        if sha256(canonical(body)) != entry["hash"]:
            problems.append(f"line {n} (seq {entry['seq']}): content changed")
        if entry["prev"] != prev:
            problems.append(f"line {n} (seq {entry['seq']}): does not follow the entry before it")
        if entry["seq"] != n - 1:
            problems.append(f"line {n}: seq {entry['seq']}, expected {n - 1}")
        prev = entry["hash"]
        entries.append(entry)

    # 2. Checkpoints: signed by an operator key, and matching the chain.
    signed_upto = -1
    for n, raw in enumerate(open(cp_path, "rb").read().splitlines(), start=1):
        cp = json.loads(raw)
        body = {k: v for k, v in cp.items() if k != "sig"}
        if not signed_by(keys, cp["key_id"], cp["sig"], canonical(body)):
            problems.append(f"checkpoint {n}: bad signature")
        elif cp["seq"] >= len(entries):
            problems.append(f"checkpoint {n}: covers seq {cp['seq']}, the log ends before it")
        elif entries[cp["seq"]]["hash"] != cp["hash"]:
            problems.append(f"checkpoint {n}: seq {cp['seq']} has another hash in the log")
        else:
            signed_upto = max(signed_upto, cp["seq"])

    # 3. A receipt: signed, its entry in the log, its claims digest and commitments match.
    if receipt is not None:
        body = {k: v for k, v in receipt.items() if k != "signature"}
        if not signed_by(keys, receipt["key_id"], receipt["signature"], canonical(body)):
            problems.append("receipt: bad signature")
        subject = receipt["claims"]["subject"].encode()
        anchor = receipt["audit"]
        openings = [(anchor["seq"], anchor["salt"])]
        openings += [(o["seq"], o["salt"]) for o in receipt["openings"]]
        for seq, salt in openings:
            if seq >= len(entries):
                problems.append(f"receipt: the log has no entry {seq}")
                continue
            expected = "c1_" + sha256(DOMAIN + bytes.fromhex(salt) + subject)
            if entries[seq]["subject"] != expected:
                problems.append(f"receipt: entry {seq} is not about the receipt's subject")
        if anchor["seq"] < len(entries):
            entry = entries[anchor["seq"]]
            if entry["hash"] != anchor["hash"] or entry["type"] != "erasure_completed":
                problems.append("receipt: its entry differs in the log")
            if entry["body"].get("claims_digest") != sha256(canonical(receipt["claims"])):
                problems.append("receipt: its claims differ from what the log recorded")
            if anchor["seq"] > signed_upto:
                print("note: the receipt's entry is not yet covered by a signed checkpoint")

    for p in problems:
        print("FAIL", p)
    print(
        f"{len(entries)} entries, signed up to seq {signed_upto}: "
        + ("OK" if not problems else f"{len(problems)} problem(s)")
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
