"""Counts what a test stack's Mosquitto holds for durable sessions, from its own
persistence file: how many sessions, subscriptions and queued deliveries, and which
bridge client ids. A measurement tool, not a fixture: load it as a plugin to log a
census after every test, e.g.

    PYTHONPATH=. SESSION_CENSUS_JSONL=/tmp/census.jsonl \\
        pytest -p tests.support.mosquitto_census tests/processor

Each line: the test just torn down, the stack's fixture name and the counts. The census
makes the broker write its database (SIGUSR1, as its autosave does every 30 s).
The format read is Mosquitto 2.0's (db version 6): chunks of (type, length) in network
byte order after a 23-byte header.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

_MAGIC = b"\x00\xb5\x00mosquitto db"
_HEADER = len(_MAGIC) + 8  # the magic, a CRC and the db version (uint32 each)
_MSG_STORE, _CLIENT_MSG, _SUB, _CLIENT = 2, 3, 5, 6
#: PF_client: expiry time (i64, in host order: unused here), expiry interval (u32),
#: last mid, id len, port, user len (u16 each), padding (u32); then id and username.
_CLIENT_FIXED = struct.Struct(">qIHHHHI")
#: PF_client_msg: store id (u64), mid, id len (u16 each), qos, state, retain/dup,
#: direction (u8 each); then the client id.
_CLIENT_MSG_FIXED = struct.Struct(">QHHBBBB")
BRIDGE_PREFIX = "facegate-bridge-"


@dataclass
class Census:
    sessions: int = 0
    subscriptions: int = 0
    queued: int = 0  # deliveries waiting for (or in flight to) a session
    stored: int = 0  # distinct messages the broker keeps for them
    bridges: list[str] = field(default_factory=list)
    #: Queued deliveries per bridge session (other clients' are only in ``queued``).
    queued_for: dict[str, int] = field(default_factory=dict)


def _chunks(data: bytes) -> Iterator[tuple[int, bytes]]:
    if not data.startswith(_MAGIC):
        raise ValueError("not a Mosquitto persistence file")
    (version,) = struct.unpack_from(">I", data, len(_MAGIC) + 4)
    if version != 6:
        raise ValueError(f"Mosquitto db version {version}; this reads version 6")
    at = _HEADER
    while at + 8 <= len(data):
        kind, length = struct.unpack_from(">II", data, at)
        yield kind, data[at + 8 : at + 8 + length]
        at += 8 + length


def read_census(db: Path) -> Census:
    census, kinds = Census(), Counter[int]()
    for kind, body in _chunks(db.read_bytes()):
        kinds[kind] += 1
        if kind == _CLIENT:
            id_len = _CLIENT_FIXED.unpack_from(body)[3]
            start = _CLIENT_FIXED.size
            client_id = body[start : start + id_len].decode(errors="replace")
            if client_id.startswith(BRIDGE_PREFIX):
                census.bridges.append(client_id)
        elif kind == _CLIENT_MSG:
            id_len = _CLIENT_MSG_FIXED.unpack_from(body)[2]
            start = _CLIENT_MSG_FIXED.size
            client_id = body[start : start + id_len].decode(errors="replace")
            if client_id.startswith(BRIDGE_PREFIX):
                census.queued_for[client_id] = census.queued_for.get(client_id, 0) + 1
    census.sessions, census.subscriptions = kinds[_CLIENT], kinds[_SUB]
    census.queued, census.stored = kinds[_CLIENT_MSG], kinds[_MSG_STORE]
    census.bridges.sort()
    return census


def take_census(state_dir: Path, timeout_s: float = 10.0) -> Census | None:
    """Make the running broker of ``state_dir`` save its database, then read it; None
    when it is not running."""
    mosquitto = state_dir / "mosquitto"
    db = mosquitto / "data" / "mosquitto.db"
    try:
        pid = int((mosquitto / "mosquitto.pid").read_text().strip())
        before = db.stat().st_mtime_ns if db.exists() else 0
        os.kill(pid, signal.SIGUSR1)
    except (OSError, ValueError):
        return None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if db.exists() and db.stat().st_mtime_ns != before:
            time.sleep(0.2)  # written to a temporary name, then renamed: let it land
            return read_census(db)
        time.sleep(0.1)
    return None


#: Not FACEGATE_-prefixed: the CLI refuses an unknown FACEGATE_ variable in its environment.
CENSUS_ENV = "SESSION_CENSUS_JSONL"
_STACKS: dict[Path, str] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    yield
    from tests.conftest import StackHandle

    for name, value in getattr(item, "funcargs", {}).items():
        if isinstance(value, StackHandle):
            _STACKS.setdefault(value.state_dir, name)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    yield
    out = os.environ.get(CENSUS_ENV)
    if not out or nextitem is None:  # the last test's teardown also stops the stacks
        return
    for state_dir, fixture in list(_STACKS.items()):
        census = take_census(state_dir)
        if census is None:
            continue
        line: dict[str, Any] = {"after": item.nodeid, "stack": fixture, **asdict(census)}
        with open(out, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
