"""The erasure worker survives its input: garbage on the erasure and acks topics is
dead-lettered with its coordinates and counted while the valid records after it take
effect; a PostgreSQL outage mid-erasure is waited out (never quarantined) and the
erasure completes once the server is back."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import urllib.request
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from edge_agent.wire.commands import CommandAck
from edge_agent.wire.decoding import REASONS as WIRE_REASONS
from edge_agent.wire.ids import new_event_id
from stream_processor.erasure.metrics import ErasureMetrics
from stream_processor.erasure.progress import ErasureRequest
from stream_processor.erasure.request import read_request
from stream_processor.erasure.service import Deps, ErasureService, read_ack
from stream_processor.quarantine import Backoff, ConsumerMetrics, Coordinates, Quarantine, guard
from tests.conftest import Pipeline, free_ports, make_state_dir, wait_for
from tests.erasure.doubles import OTHER, SUBJECT, Recorder, request, row
from tests.support.records import dead_letters, json_values, produce

#: Reasons a reader may give (a bounded set: they are metrics labels).
REASONS = {*WIRE_REASONS, "missing_value"}


def valid_ack(**overrides: Any) -> dict[str, Any]:
    ack = {
        "schema_version": 1, "command_id": new_event_id(),
        "type": "erase_subject", "tenant": "acme", "site": "nowhere", "gate": "g1",
        "device": "d1", "subject": SUBJECT, "status": "done", "templates_removed": 1,
        "outbox_events_purged": 0, "acked_at_ms": int(time.time() * 1000),
    }  # fmt: skip
    ack.update(overrides)
    return ack


def hostile_requests(r: ErasureRequest) -> list[tuple[bytes, bytes | None]]:
    good = json.loads(r.encode())
    key = r.request_id.encode()
    return [
        (key, b"\xff\xfe\x00garbage"),
        (key, b"[1, 2, 3]"),
        (key, json.dumps({**good, "requested_at_ms": "yesterday"}).encode()),
        (key, json.dumps({**good, "requested_at_ms": 10**400}).encode()),
        (key, json.dumps({**good, "face_image": "AAAA"}).encode()),
        (key, json.dumps({**good, "subject": "resident-alice"}).encode()),
        (key, None),  # a tombstone on a topic that has none
    ]


def hostile_acks() -> list[bytes]:
    return [
        b"not json at all",
        json.dumps(valid_ack(templates_removed=-1)).encode(),
        json.dumps(valid_ack(outbox_events_purged=2**70)).encode(),
        json.dumps(valid_ack(embedding=[0.1, 0.2])).encode(),
        json.dumps(valid_ack(status=7)).encode(),
    ]


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {
        name: float(value)
        for line in text.splitlines()
        if line and not line.startswith("#")
        for name, value in [line.rsplit(" ", 1)]
    }


@pytest.mark.component
def test_worker_quarantines_garbage_and_takes_the_valid_records(
    pipeline: Pipeline,
) -> None:
    from tests.erasure.conftest import ErasureRig

    rig = ErasureRig(pipeline, None)
    (metrics_port,) = free_ports(1)
    pipeline.extra_env["FACEGATE_ERASURE_METRICS_PORT"] = str(metrics_port)
    worker = pipeline.start("erasure", "worker", name="erasure")
    valid = msgspec.structs.replace(request(site=f"quiet-{pipeline.tag}"))
    hostile = hostile_requests(valid)
    produce(
        rig.bootstrap, rig.topics.erasure, [*hostile, (valid.request_id.encode(), valid.encode())]
    )
    produce(rig.bootstrap, rig.topics.acks,
            [(b"acme/nowhere", a) for a in hostile_acks()]
            + [(b"acme/nowhere", json.dumps(valid_ack()).encode())])  # fmt: skip

    wait_for(lambda: rig.status(valid.request_id)["status"] == "complete", 120, "the receipt")
    wanted = len(hostile) + len(hostile_acks())
    wait_for(lambda: len(dead_letters(rig.bootstrap, rig.topics.dlq)) >= wanted, 60, "letters")
    assert worker.poll() is None, pipeline.log("erasure")

    letters = dead_letters(rig.bootstrap, rig.topics.dlq)
    by_stage = {
        stage: sorted((d.source_offset, d.reason) for d in letters if d.stage == stage)
        for stage in ("erasure_requests", "erasure_acks")
    }
    assert [o for o, _ in by_stage["erasure_requests"]] == list(range(len(hostile)))
    assert [o for o, _ in by_stage["erasure_acks"]] == list(range(len(hostile_acks())))
    assert {r for _, r in by_stage["erasure_requests"] + by_stage["erasure_acks"]} <= REASONS
    requests = [d for d in letters if d.stage == "erasure_requests"]
    assert all(d.raw_len == 0 and d.source_topic == rig.topics.erasure for d in requests)
    acks = [d for d in letters if d.stage == "erasure_acks"]
    assert {(d.source_topic, d.source_partition is not None) for d in acks} == {
        (rig.topics.acks, True)
    }  # one key, one partition: offsets 0.. above

    seen = scrape(metrics_port)
    quarantined = {
        k: v for k, v in seen.items() if k.startswith("facegate_consumer_quarantined_total{")
    }
    assert sum(quarantined.values()) == wanted, quarantined
    # The valid ack was read and judged (it belongs to no erasure here), not quarantined.
    assert seen['facegate_erasure_acks_total{outcome="not_this_request"}'] == 1
    assert SUBJECT not in pipeline.log("erasure")


@settings(max_examples=400, deadline=None)
@given(
    value=json_values,
    base=st.sampled_from(["request", "ack", "none"]),
)
def test_readers_refuse_arbitrary_json_with_a_reason_and_never_raise(value: Any, base: str) -> None:
    """Arbitrary JSON alone, or merged into a valid request or ack (wrong types, extra
    fields, out-of-range numbers): each reader returns its record or a refusal."""
    if base != "none" and isinstance(value, dict):
        value = {**json.loads(request().encode() if base == "request" else json.dumps(valid_ack())),
                 **value}  # fmt: skip
    raw = json.dumps(value, allow_nan=True).encode()
    for read, kind in ((read_request, ErasureRequest), (read_ack, CommandAck)):
        out = read(raw)
        assert isinstance(out, kind) or out.reason in REASONS, out


def test_readers_refuse_undecodable_bytes() -> None:
    for raw in (b"", b"\xff\xfe", b"{" * 10_000, b'{"a": 1, "a": 2}', b"NaN", None):
        for read in (read_request, read_ack):
            out = read(raw)
            assert not isinstance(out, (ErasureRequest, CommandAck)) and out.reason in REASONS


# -- a PostgreSQL outage mid-erasure ------------------------------------------------------


class Letters:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, key: bytes, value: bytes) -> None:
        self.sent.append(value)


@pytest.mark.component
def test_a_postgres_outage_mid_erasure_is_waited_out_and_the_erasure_completes(
    tmp_path: Path,
) -> None:
    from stream_processor.audit.wiring import open_audit
    from stream_processor.erasure.audit import ErasureAudit
    from stream_processor.erasure.book import ErasureBook
    from stream_processor.rights.db import open_rights_db
    from stream_processor.rights.receipt_store import ReceiptStore
    from stream_processor.stack.postgres import Postgres
    from stream_processor.stack.settings import StackSettings
    from stream_processor.store.postgres import PostgresEventStore
    from stream_processor.store.settings import StoreSettings

    (port,) = free_ports(1)
    state = make_state_dir("facegate-pg-outage-")
    pg = Postgres(StackSettings(state_dir=state),
                  StoreSettings(store="postgres", postgres_port=port))  # fmt: skip
    pg.up()
    try:
        dsn = pg.dsn()
        seed = PostgresEventStore(dsn)
        now = int(time.time() * 1000)
        seed.put_many([row(SUBJECT, now - i) for i in range(4)] + [row(OTHER, now)])
        seed.close()
        builds: list[int] = []

        def deps() -> Deps:
            builds.append(1)
            store = PostgresEventStore(dsn)
            db = open_rights_db(tmp_path / "rights.sqlite")
            audit = open_audit(tmp_path / "state")
            ea = ErasureAudit(audit.log, audit.key, "pg", audit.openings, ReceiptStore(db), None)
            return Deps(
                store=store, book=ErasureBook(db), audit=ea, ledger_keys=lambda: [],
                devices=lambda: [], retentions=lambda: [], consent_topic="consent",
                closing=[audit.close, db.close],
            )  # fmt: skip

        registry = CollectorRegistry()
        svc = ErasureService(deps, Recorder(), ErasureMetrics(registry))
        q = Quarantine("erasure_requests", ConsumerMetrics(registry), keep_bytes=False,
                       backoff=Backoff(first_s=0.2, max_s=1.0))  # fmt: skip
        letters = Letters()
        r = request()

        def retries() -> float:
            value = registry.get_sample_value(
                "facegate_consumer_outage_retries_total", {"consumer": "erasure_requests"}
            )
            return value or 0.0

        async def scenario() -> Any:
            await svc.tick()  # the worker is up: its PostgreSQL connection is open
            await asyncio.to_thread(pg.down)
            task = asyncio.ensure_future(
                guard(
                    lambda: svc.on_request(r.encode()),
                    r.encode(),
                    Coordinates("facegate.erasure", 0, 0),
                    q,
                    letters,
                )  # fmt: skip
            )
            while retries() < 3:
                assert not task.done(), "gave up on the record while PostgreSQL was down"
                await asyncio.sleep(0.1)
            await asyncio.to_thread(pg.up)
            outcome = await asyncio.wait_for(task, 60)
            await svc.close()
            return outcome

        assert asyncio.run(scenario()) is None
        assert letters.sent == []  # nothing quarantined
        assert len(builds) >= 2  # the dead connection was replaced
        receipt = ReceiptStore(open_rights_db(tmp_path / "rights.sqlite")).get(r.request_id)
        assert receipt is not None
        assert {d.where: d.count for d in receipt.claims.deletions}["event_store"] == 4
        store = PostgresEventStore(dsn)
        try:
            assert store.events_of_subject("acme", "north", SUBJECT) == []
            assert len(store.events_of_subject("acme", "north", OTHER)) == 1
        finally:
            store.close()
        log = (tmp_path / "state" / "audit" / "log.jsonl").read_text()
        assert log.count("erasure_requested") == 1 and log.count("erasure_completed") == 1
        waiting = registry.get_sample_value(
            "facegate_consumer_waiting_on_outage", {"consumer": "erasure_requests"}
        )
        assert waiting == 0
    finally:
        pg.down()
        shutil.rmtree(state, ignore_errors=True)


def test_a_failing_tick_is_counted_and_never_ends_the_timer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Faust ends a timer whose function raises: the tick must swallow a store outage
    (counted, logged by type, never naming a subject) so the next round runs."""
    import sqlite3

    from stream_processor.erasure.app import tick_once

    builds: list[int] = []

    def deps() -> Deps:
        builds.append(1)
        raise sqlite3.OperationalError(f"unable to open database file for {SUBJECT}")

    registry = CollectorRegistry()
    consumers = ConsumerMetrics(registry)
    svc = ErasureService(deps, Recorder(), ErasureMetrics(registry))

    async def rounds() -> None:
        await tick_once(svc, consumers)
        await tick_once(svc, consumers)
        await svc.close()

    asyncio.run(rounds())
    retries = registry.get_sample_value(
        "facegate_consumer_outage_retries_total", {"consumer": "erasure_tick"}
    )
    assert retries == 2 and len(builds) == 2  # each round tried the store again
    assert "OperationalError" in caplog.text and SUBJECT not in caplog.text


@pytest.mark.component
def test_the_worker_waits_out_postgres_going_away_mid_erasure(pipeline: Pipeline) -> None:
    """The real worker process on PostgreSQL: the server stops after the worker started,
    a request arrives, the agent holds it (waiting gauge 1, nothing quarantined), and the
    erasure completes once the server is back. (Stopped after the request was accepted:
    ``test_a_postgres_outage_mid_erasure_is_waited_out_and_the_erasure_completes``.)"""
    from stream_processor.stack.postgres import Postgres
    from stream_processor.stack.settings import StackSettings
    from stream_processor.store.postgres import PostgresEventStore
    from stream_processor.store.settings import StoreSettings
    from tests.erasure.conftest import ErasureRig

    (pg_port, metrics_port) = free_ports(2)
    state = make_state_dir("facegate-pg-worker-")
    pg = Postgres(StackSettings(state_dir=state),
                  StoreSettings(store="postgres", postgres_port=pg_port))  # fmt: skip
    pg.up()
    try:
        dsn = pg.dsn()
        r = request()
        seed = PostgresEventStore(dsn)
        seed.put_many([row(SUBJECT, r.requested_at_ms - i) for i in range(3)])
        seed.close()
        rig = ErasureRig(pipeline, None)
        pipeline.extra_env.update({
            "FACEGATE_STORE": "postgres", "FACEGATE_POSTGRES_DSN": dsn,
            "FACEGATE_ERASURE_METRICS_PORT": str(metrics_port),
        })  # fmt: skip
        worker = pipeline.start("erasure", "worker", name="erasure")
        wait_for(lambda: "erasure worker" in pipeline.log("erasure"), 90, "the worker up")
        pg.down()
        produce(rig.bootstrap, rig.topics.erasure, [(r.request_id.encode(), r.encode())])
        waiting = 'facegate_consumer_waiting_on_outage{consumer="erasure_requests"}'
        wait_for(lambda: _metric(metrics_port, waiting) == 1, 120, "the agent waiting")
        # Taken (on the record, in the book) while the store is down: only its steps wait.
        assert rig.status(r.request_id) | {"age_s": 0} == rig.status(r.request_id) | {
            "status": "pending", "stores_done": False, "age_s": 0,
        }  # fmt: skip
        pg.up()
        wait_for(lambda: rig.status(r.request_id)["status"] == "complete", 120, "the receipt")
        # The tick may finish it first; the agent resumes at its next try (back-off).
        wait_for(lambda: _metric(metrics_port, waiting) == 0, 60, "the agent going on")
        assert worker.poll() is None
        assert dead_letters(rig.bootstrap, rig.topics.dlq) == []
        store = PostgresEventStore(dsn)
        try:
            assert store.events_of_subject("acme", "north", SUBJECT) == []
        finally:
            store.close()
    finally:
        pg.down()
        shutil.rmtree(state, ignore_errors=True)


def _metric(port: int, name: str) -> float | None:
    try:
        return scrape(port).get(name)
    except OSError:
        return None
