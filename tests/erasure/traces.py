"""Every place in a database that still holds a pseudonym, in any of the forms a careless
column could keep it: the text, its 32 hex digits, the text or the digest in hex or
base64 (standard, URL-safe, with or without padding), or the digest's raw bytes."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from typing import Any

#: Lists the tables of a database: SQLite's catalogue, or PostgreSQL's for the schema in use.
TABLES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table'",
    "postgres": "SELECT table_name FROM information_schema.tables "
    "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
}


class Forms:
    """The forms of one pseudonym (``ps1_`` + 32 hex digits) a value may hold."""

    def __init__(self, pseudonym: str) -> None:
        digest = bytes.fromhex(pseudonym.removeprefix("ps1_"))
        self.raw = [pseudonym.encode(), digest]
        #: Hex is compared lowercased; base64 is case-sensitive.
        self.hex = [pseudonym.lower(), digest.hex(), pseudonym.encode().hex()]
        self.b64 = [
            enc(data).decode().rstrip("=")
            for data in self.raw
            for enc in (base64.b64encode, base64.urlsafe_b64encode)
        ]

    def held_by(self, value: Any) -> bool:
        if isinstance(value, memoryview):
            value = value.tobytes()
        if isinstance(value, bytes):
            return any(r in value for r in self.raw) or self.held_by(value.decode("latin-1"))
        if isinstance(value, str):
            low = value.lower()
            return any(h in low for h in self.hex) or any(b in value for b in self.b64)
        return False


Execute = Callable[[str], Any]


def traces(execute: Execute, dialect: str, pseudonym: str) -> set[tuple[str, str]]:
    """(table, column) of every value that holds ``pseudonym`` in any form. ``execute``
    runs one SQL text and returns a DB-API cursor."""
    forms = Forms(pseudonym)
    found: set[tuple[str, str]] = set()
    tables: Iterable[str] = [r[0] for r in execute(TABLES[dialect]).fetchall()]
    for table in sorted(tables):
        cur = execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names from the catalogue
        columns = [d[0] for d in cur.description]
        for row in cur.fetchall():
            for column, value in zip(columns, row, strict=True):
                if forms.held_by(value):
                    found.add((table, column))
    return found
