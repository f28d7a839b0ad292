"""A refused payload that carries what must never be kept: a 192-byte int8 face
template (raw, base64, hex, a list of ints), a name (also as a key) and an id
number; and the check that none of it can be read back from some bytes."""

from __future__ import annotations

import base64
import json
import os

TEMPLATE = os.urandom(192)  # an int8 face template
NAME = "Zhang San"
ID_NUMBER = "110101199003077777"


def hostile_payload() -> bytes:
    return json.dumps(
        {
            "schema_version": 1,
            "template": base64.b64encode(TEMPLATE).decode(),
            "template_hex": TEMPLATE.hex(),
            "template_ints": list(TEMPLATE),
            "name": NAME,
            "id_number": ID_NUMBER,
            NAME: "a name as a key",
        }
    ).encode()


def readable_forms() -> list[bytes]:
    """Every way the template, the name or the id number could be read back."""
    t = TEMPLATE
    ints = json.dumps(list(t[:8]))[1:-1].encode()
    return [t[:16], base64.b64encode(t)[:24], t.hex()[:32].encode(), ints] + [
        NAME.encode(), b"Zhang", ID_NUMBER.encode(), base64.b64encode(NAME.encode())
    ]  # fmt: skip


def assert_unreadable(letter_bytes: bytes) -> None:
    for form in readable_forms():
        assert form not in letter_bytes, form
        assert base64.b64encode(form)[:12] not in letter_bytes, form
