"""The console over private files: two firms (acme, bolt), a real SQLite event store,
policies in memory, device statuses applied directly, tokens of every role."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.web import EXAMPLE_CAMERAS

#: acme's site and gates (from the example registry) and bolt's copy of it.
A_SITE, B_SITE = "north-garden", "south-bay"


def two_firm_registry(path: Path) -> None:
    doc = yaml.safe_load(EXAMPLE_CAMERAS.read_text())
    site = doc["sites"][0]
    other = {**site, "tenant": "bolt", "site": B_SITE}
    doc["sites"] = [site, other]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))


@dataclass
class Clock:
    now: float = field(default_factory=time.time)

    def __call__(self) -> float:
        return self.now


@dataclass
class ConsoleRig:
    deps: Any
    store: Any
    clock: Clock
    tokens: dict[str, str]  # "acme:viewer" → secret
    db: Any

    def token(self, tenant: str, role: str) -> str:
        return self.tokens[f"{tenant}:{role}"]

    def run(self, scenario: Callable[[Any], Awaitable[None]]) -> None:
        from aiohttp.test_utils import TestClient, TestServer

        from stream_processor.web.app import create_app

        async def go() -> None:
            async with TestClient(TestServer(create_app(self.deps))) as client:
                await scenario(client)

        asyncio.run(go())


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def console(tmp_path: Path) -> Iterator[ConsoleRig]:
    from prometheus_client import CollectorRegistry

    from stream_processor.notices.archive import NoticeArchive
    from stream_processor.notices.config import RegistryFile
    from stream_processor.notices.retention import PolicyFileRetention
    from stream_processor.rights.db import open_rights_db
    from stream_processor.rights.keycards import KeycardBook
    from stream_processor.store.sqlite import SqliteEventStore
    from stream_processor.web.compliance import Milestones
    from stream_processor.web.deps import WebDeps
    from stream_processor.web.devices import DeviceTable
    from stream_processor.web.erasures import ErasureReads
    from stream_processor.web.limits import SlidingWindowLimit
    from stream_processor.web.policies import MemoryPolicyStore
    from stream_processor.web.store_reads import ThreadConfinedStore
    from stream_processor.web.tokens import Role, TokenBook

    clock = Clock()
    cameras = tmp_path / "config" / "cameras.yaml"
    two_firm_registry(cameras)
    (tmp_path / "config" / "policies").mkdir()
    db = open_rights_db(tmp_path / "rights.sqlite")
    book = TokenBook(db, clock=clock)
    tokens = {
        f"{tenant}:{role.value}": book.create(tenant, role, f"{tenant}-{role.value}")[0]
        for tenant in ("acme", "bolt")
        for role in Role
    }
    store = ThreadConfinedStore(lambda: SqliteEventStore(tmp_path / "events.sqlite"))
    deps = WebDeps(
        cameras=RegistryFile(cameras),
        retention=PolicyFileRetention(tmp_path / "config" / "policies"),
        archive=NoticeArchive(db, clock=clock),
        keycards=KeycardBook(db, clock=clock),
        tokens=book,
        registry=CollectorRegistry(),
        store=store,
        devices=DeviceTable(offline_after_s=30),
        policies=MemoryPolicyStore(),
        clock=clock,
        token_limit=SlidingWindowLimit(10_000, 60),
        milestones=Milestones(db),
        erasures=ErasureReads(db),
        compliance_path=tmp_path / "config" / "compliance.yaml",
    )
    try:
        yield ConsoleRig(deps, store, clock, tokens, db)
    finally:
        store.close()
        db.close()


def write_events(path: Path, rows: list[tuple[Any, ...]], subject: str | None = None) -> None:
    """Store events and their per-minute counts the way the processor does."""
    from stream_processor.store.base import AggregateKey, StoredEvent
    from stream_processor.store.sqlite import SqliteEventStore

    store = SqliteEventStore(path)
    try:
        events, counts = [], {}
        for i, (tenant, site, gate, kind, decision, at_ms) in enumerate(rows):
            eid = str(uuid.uuid4())  # unique across calls: every row is a new event
            events.append(
                StoredEvent(
                    eid,
                    i,
                    tenant,
                    site,
                    gate,
                    "dev-1",
                    kind,
                    decision,
                    "access_control",
                    at_ms,
                    subject,
                    None,
                    None,
                    None,
                    None,
                    at_ms,
                    None,
                )
            )
            key = AggregateKey(at_ms - at_ms % 60_000, tenant, site, gate, kind, decision, "stored")
            counts[key] = counts.get(key, 0) + 1
        store.write_batch(events, counts)
    finally:
        store.close()
