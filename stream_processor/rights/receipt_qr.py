"""What a receipt's QR code holds, and reading it back from a scan or a paste.

A receipt without a witnessed proof is its JSON text. A witnessed one (inclusion
proof, cosigned checkpoint: ~2.3 kB and growing with the log) would crowd a QR
code's byte mode, so it is ``FG1:`` + base45(zlib(JSON)): base45 (RFC 9285)
uses exactly the QR alphanumeric alphabet, packed 5.5 bits a character.
"""

from __future__ import annotations

import zlib

from stream_processor.rights.receipts import ErasureReceipt

PREFIX = "FG1:"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
_MAX_TEXT = 64 * 1024


def b45encode(data: bytes) -> str:
    out: list[str] = []
    for i in range(0, len(data) - 1, 2):
        n = data[i] * 256 + data[i + 1]
        out += [_ALPHABET[n % 45], _ALPHABET[n // 45 % 45], _ALPHABET[n // 2025]]
    if len(data) % 2:
        n = data[-1]
        out += [_ALPHABET[n % 45], _ALPHABET[n // 45]]
    return "".join(out)


def b45decode(text: str) -> bytes:
    try:
        values = [_INDEX[c] for c in text]
    except KeyError as exc:
        raise ValueError(f"not base45: {exc}") from None
    out = bytearray()
    for i in range(0, len(values), 3):
        chunk = values[i : i + 3]
        if len(chunk) == 1:
            raise ValueError("base45 text of a wrong length")
        n = sum(v * 45**k for k, v in enumerate(chunk))
        if (len(chunk) == 3 and n > 0xFFFF) or (len(chunk) == 2 and n > 0xFF):
            raise ValueError("base45 value out of range")
        out += n.to_bytes(2, "big") if len(chunk) == 3 else bytes([n])
    return bytes(out)


def qr_payload(receipt: ErasureReceipt) -> str:
    text = receipt.to_json()
    if receipt.witnessed is None:
        return text
    return PREFIX + b45encode(zlib.compress(text.encode("utf-8"), 9))


def parse_receipt(text: str) -> ErasureReceipt:
    """A receipt from its JSON or its ``FG1:`` QR form; raises ValueError."""
    text = text.strip()
    if text.startswith(PREFIX):
        try:
            raw = zlib.decompressobj().decompress(b45decode(text[len(PREFIX) :]), _MAX_TEXT)
        except zlib.error as exc:
            raise ValueError(f"not a compressed receipt: {exc}") from None
        text = raw.decode("utf-8", "replace")
    return ErasureReceipt.model_validate_json(text)
