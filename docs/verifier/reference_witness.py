#!/usr/bin/env python3
"""A stand-alone witness for a facegate audit log (or any C2SP tlog): Python's standard
library plus ``cryptography``, no facegate code. Written from docs/rights.md and
the C2SP specifications (signed-note, tlog-checkpoint, tlog-cosignature,
tlog-witness); a test keeps it in agreement with ``facegate witness``.

It serves the C2SP ``tlog-witness`` protocol:

    python reference_witness.py --name notary.example/w1 --key witness.pem \\
        --state witness.json --log-key 'acme.example+1a2b3c4d+AQ...' --port 7380

and the log asks it (``FACEGATE_AUDIT_WITNESS_URLS=http://host:7380``). It
cosigns a checkpoint only if it is signed by a configured log key and extends
the last one it cosigned for that origin (RFC 6962 consistency proof).
``--key`` is an Ed25519 private key in PKCS#8 PEM (created if missing);
``--print-key`` prints its verifier key for the log and for verifiers.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

DASH = "\u2014"


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def consistent(old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if old > new:
        return False
    if old == new:
        return not proof and old_root == new_root
    if old == 0:
        return not proof
    if not proof:
        return False
    path = ([old_root] if old & (old - 1) == 0 else []) + proof
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


def key_id(name: str, kind: int, raw: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + raw).digest()[:4]


def parse_vkey(vkey: str) -> tuple[str, bytes, Ed25519PublicKey]:
    name, hash_hex, blob_b64 = vkey.strip().split("+", 2)
    blob = base64.b64decode(blob_b64)
    if blob[0] != 0x01 or len(blob) != 33 or key_id(name, 1, blob[1:]).hex() != hash_hex:
        raise ValueError(f"not an Ed25519 note verifier key: {vkey}")
    return name, bytes.fromhex(hash_hex), Ed25519PublicKey.from_public_bytes(blob[1:])


class Reject(Exception):
    def __init__(self, status: int, text: str, content_type: str = "text/plain") -> None:
        super().__init__(text)
        self.status, self.text, self.content_type = status, text, content_type


class Witness:
    def __init__(self, name: str, key: Ed25519PrivateKey, state: Path, log_keys: list[str]):
        self.name, self.key, self.state_path = name, key, state
        self.raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.log_keys = [parse_vkey(k) for k in log_keys]
        self.lock = threading.Lock()
        self.clock = time.time

    def vkey(self) -> str:
        blob = base64.b64encode(b"\x04" + self.raw).decode()
        return f"{self.name}+{key_id(self.name, 4, self.raw).hex()}+{blob}"

    def _load(self) -> dict[str, dict[str, object]]:
        if not self.state_path.exists():
            return {}
        return dict(json.loads(self.state_path.read_text()))

    def _save(self, state: dict[str, dict[str, object]]) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, sort_keys=True))
        os.replace(tmp, self.state_path)

    def add_checkpoint(self, body: bytes) -> str:
        """The tlog-witness add-checkpoint call: returns the cosignature line or raises Reject."""
        try:
            text = body.decode("utf-8")
            head, note = text.split("\n\n", 1)
            lines = head.split("\n")
            if not lines[0].startswith("old ") or len(lines) > 64:
                raise ValueError("first line must be old <size>")
            old = int(lines[0][4:])
            proof = [base64.b64decode(x, validate=True) for x in lines[1:]]
            cut = note.rfind("\n\n")
            checkpoint, sig_lines = note[: cut + 1], note[cut + 2 :].split("\n")[:-1]
            origin, size_s, root_b64 = checkpoint.split("\n")[:3]
            size, root = int(size_s), base64.b64decode(root_b64, validate=True)
        except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
            raise Reject(400, f"malformed request: {exc}") from None
        keys = [k for k in self.log_keys if k[0] == origin]
        if not keys:
            raise Reject(404, "unknown log origin")
        if not any(self._signed(checkpoint, line, keys) for line in sig_lines):
            raise Reject(403, "no signature by a known key of this log")
        if old > size:
            raise Reject(400, "old size is larger than the checkpoint size")
        with self.lock:
            state = self._load()
            known = state.get(origin, {"size": 0, "root": ""})
            if old != known["size"]:
                raise Reject(409, f"{known['size']}\n", "text/x.tlog.size")
            old_root = base64.b64decode(str(known["root"]))
            if old == size and old_root != root and old > 0:
                raise Reject(409, f"{known['size']}\n", "text/x.tlog.size")
            if old > 0 and not consistent(old, size, old_root, root, proof):
                raise Reject(422, "the consistency proof does not verify")
            if old == 0 and proof:
                raise Reject(422, "a proof from size 0 must be empty")
            state[origin] = {"size": size, "root": root_b64}
            self._save(state)
        stamp = int(self.clock())
        message = f"cosignature/v1\ntime {stamp}\n".encode() + checkpoint.encode()
        sig = stamp.to_bytes(8, "big") + self.key.sign(message)
        blob = base64.b64encode(key_id(self.name, 4, self.raw) + sig).decode()
        return f"{DASH} {self.name} {blob}\n"

    @staticmethod
    def _signed(text: str, line: str, keys: list[tuple[str, bytes, Ed25519PublicKey]]) -> bool:
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != DASH:
            return False
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except ValueError:  # binascii.Error, or text that is not ASCII
            return False
        for name, kid, public in keys:
            if parts[1] == name and blob[:4] == kid:
                try:
                    public.verify(blob[4:], text.encode())
                    return True
                except InvalidSignature:
                    continue
        return False


def serve(witness: Witness, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            if self.path.rstrip("/").rsplit("/", 1)[-1] != "add-checkpoint":
                self._send(404, "not found\n", "text/plain")
                return
            length = int(self.headers.get("Content-Length", "0"))
            try:
                self._send(200, witness.add_checkpoint(self.rfile.read(length)), "text/plain")
            except Reject as r:
                self._send(r.status, r.text, r.content_type)

        def _send(self, status: int, text: str, ctype: str) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    return ThreadingHTTPServer((host, port), Handler)


def load_key(path: Path) -> Ed25519PrivateKey:
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        return key
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SystemExit(f"{path} is not an Ed25519 key")
    return key


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True, help="the witness's key name")
    ap.add_argument("--key", required=True, type=Path, help="Ed25519 PKCS#8 PEM (created)")
    ap.add_argument("--state", type=Path, default=Path("witness-state.json"))
    ap.add_argument("--log-key", action="append", default=[], help="log verifier key")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=7380)
    ap.add_argument("--print-key", action="store_true", help="print the verifier key, exit")
    args = ap.parse_args()
    witness = Witness(args.name, load_key(args.key), args.state, args.log_key)
    if args.print_key:
        print(witness.vkey())
        return
    print(f"witness {witness.vkey()} on http://{args.host}:{args.port}")
    serve(witness, args.host, args.port).serve_forever()


if __name__ == "__main__":
    main()
