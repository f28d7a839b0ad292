#!/usr/bin/env python3
"""A stand-alone verifier of a facegate audit log — no facegate code, only the spec.

It exists to show that the published format (docs/rights.md) is enough: a
court, a notary or a resident's lawyer can check a log, its signed
checkpoints and an erasure receipt with Python's standard library and the
`cryptography` package (for Ed25519), reading this one file.

    python3 verify_audit.py log.jsonl checkpoints.jsonl operator-public.pem [receipt.json]
        [--note checkpoint.txt]... [--witness-key KEY]... [--require-witnesses N]

With witnesses: each C2SP checkpoint note (--note) must be signed by an
operator key and match the RFC 6962 root of the log's first <size> lines; with
--require-witnesses N, one matching note must carry N cosignatures (cosignature/v1)
from distinct --witness-key keys, and the receipt must lie inside it.

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


def merkle_root(leaves):
    """RFC 6962: leaf hash SHA-256(0x00 || line), node SHA-256(0x01 || left || right)."""
    level = [hashlib.sha256(b"\x00" + x).digest() for x in leaves]
    if not level:
        return hashlib.sha256(b"").digest()
    stack = []  # (size, hash) of complete subtrees, left to right
    for h in level:
        size = 1
        while stack and stack[-1][0] == size:
            h = hashlib.sha256(b"\x01" + stack.pop()[1] + h).digest()
            size *= 2
        stack.append((size, h))
    h = stack[-1][1]
    for _, left in reversed(stack[:-1]):
        h = hashlib.sha256(b"\x01" + left + h).digest()
    return h


def note_key_id(name, kind, raw):
    return hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + raw).digest()[:4]


def note_signatures(text):
    """(body, [(name, key id, signature bytes)]) of a C2SP signed note."""
    cut = text.rfind("\n\n")
    body, sigs = text[: cut + 1], []
    for line in text[cut + 2 :].splitlines():
        dash, name, blob = line.split(" ")
        if dash != "\u2014":
            raise ValueError("not a note signature line")
        raw = base64.b64decode(blob)
        sigs.append((name, raw[:4], raw[4:]))
    return body, sigs


def check_notes(lines, notes, keys, witness_keys, require):
    """Largest tree size witnessed by ``require`` keys (0: none), and the problems found."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    witnesses = []
    for vkey in witness_keys:
        name, _, blob = vkey.split("+", 2)
        raw = base64.b64decode(blob)
        if raw[0] != 0x04:
            raise ValueError("a witness key is a cosignature/v1 key (type 0x04)")
        witnesses.append(
            (name, note_key_id(name, 4, raw[1:]), Ed25519PublicKey.from_public_bytes(raw[1:]))
        )
    problems, witnessed = [], 0
    for n, text in enumerate(notes, start=1):
        body, sigs = note_signatures(text)
        origin, size, root = body.split("\n")[:3]
        size, root = int(size), base64.b64decode(root)
        operator = False
        for key in keys.values():
            raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            for name, kid, sig in sigs:
                if name == origin and kid == note_key_id(origin, 1, raw):
                    try:
                        key.verify(sig, body.encode())
                        operator = True
                    except InvalidSignature:
                        pass
        if not operator:
            problems.append(f"note {n}: not signed by an operator key")
            continue
        if size > len(lines):
            problems.append(f"note {n}: covers {size} entries, the log has {len(lines)}")
            continue
        if merkle_root(lines[:size]) != root:
            problems.append(f"note {n}: the log's first {size} entries were rewritten")
            continue
        cosigned = set()
        for wname, wkid, wkey in witnesses:
            for name, kid, sig in sigs:
                if name == wname and kid == wkid and len(sig) == 72:
                    message = b"cosignature/v1\ntime %d\n" % int.from_bytes(sig[:8], "big")
                    try:
                        wkey.verify(sig[8:], message + body.encode())
                        cosigned.add(wname)
                    except InvalidSignature:
                        pass
        if cosigned and len(cosigned) >= max(require, 1):
            witnessed = max(witnessed, size)
    if require and not witnessed:
        problems.append(f"no checkpoint matching the log has {require} witness cosignature(s)")
    return witnessed, problems


USAGE = (
    "usage: python3 verify_audit.py LOG CHECKPOINTS PUBLIC_KEY [RECEIPT] "
    "[--note FILE]... [--witness-key KEY]... [--require-witnesses N]"
)


def split_options(argv):
    """Positional arguments, and the witness options (--note, --witness-key,
    --require-witnesses)."""
    positional, notes, witness_keys, require = [], [], [], 0
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--note", "--witness-key", "--require-witnesses"):
            if i + 1 >= len(argv):
                raise ValueError(f"{arg} needs a value")
            value = argv[i + 1]
            if arg == "--note":
                notes.append(value)
            elif arg == "--witness-key":
                witness_keys.append(value)
            else:
                require = int(value)
            i += 2
        else:
            positional.append(arg)
            i += 1
    return positional, notes, witness_keys, require


def main(argv):
    try:
        positional, notes, witness_keys, require = split_options(argv)
    except ValueError as exc:
        print(f"Error: {exc}; {USAGE}", file=sys.stderr)
        return 2
    if len(positional) not in (4, 5):
        print(f"Error: {USAGE}", file=sys.stderr)
        return 2
    try:
        return verify(positional, notes, witness_keys, require)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # A file that is missing, not JSON, or not in the published format.
        print(f"Error: cannot verify: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


def verify(argv, notes=(), witness_keys=(), require=0):
    log_path, cp_path, key_path = argv[1:4]
    receipt = json.load(open(argv[4], encoding="utf-8")) if len(argv) > 4 else None
    keys = load_keys(key_path)
    problems = []
    entries = check_chain(log_path, problems)
    signed_upto = check_checkpoints(cp_path, keys, entries, problems)
    witnessed = 0
    if notes or require:
        witnessed = check_witnessing(
            log_path, notes, receipt, keys, witness_keys, require, problems
        )
    if receipt is not None:
        check_receipt(receipt, keys, entries, signed_upto, problems)

    for p in problems:
        print("FAIL", p)
    if witnessed:
        print(f"witnessed: entries 0..{witnessed - 1} are in a cosigned checkpoint")
    print(
        f"{len(entries)} entries, signed up to seq {signed_upto}: "
        + ("OK" if not problems else f"{len(problems)} problem(s)")
    )
    return 1 if problems else 0


def check_chain(log_path, problems):
    """Each line is canonical, hashes to its "hash", links to the one before. The entries."""
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
    return entries


def check_checkpoints(cp_path, keys, entries, problems):
    """Signed by an operator key, and matching the chain. The last seq they sign."""
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
    return signed_upto


def check_witnessing(log_path, notes, receipt, keys, witness_keys, require, problems):
    """C2SP checkpoints and cosignatures (see witness.py in this folder). How many entries
    a cosigned checkpoint covers."""
    lines = open(log_path, "rb").read().splitlines()
    notes_text = [open(p, encoding="utf-8").read() for p in notes]
    if receipt is not None and receipt.get("witnessed"):
        notes_text.append(receipt["witnessed"]["checkpoint"])
    witnessed, found = check_notes(lines, notes_text, keys, witness_keys, require)
    problems += found
    if receipt is not None and require and receipt["audit"]["seq"] >= witnessed:
        problems.append("receipt: no witnessed checkpoint covers its entry")
    return witnessed


def check_receipt(receipt, keys, entries, signed_upto, problems):
    """Signed, its entry in the log, its claims digest and commitments match."""
    # The witnessed proof is added after signing, outside the signature.
    body = {k: v for k, v in receipt.items() if k not in ("signature", "witnessed")}
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


if __name__ == "__main__":
    sys.exit(main(sys.argv))
