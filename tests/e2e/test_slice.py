"""The thin end-to-end slice on the real brokers: edge outbox → MQTT v5 QoS 1 →
Mosquitto → bridge → Kafka → Faust worker → SQLite, exactly once per event.

Since the policy engine (issue 5) the worker stores only what the tenant's
policy and the residents' consents allow: the slice applies a policy, grants
every simulated resident consent, and expects every event but the unknown
faces (counted, never stored) to arrive exactly once."""

from __future__ import annotations

import sqlite3
import time

import pytest

from edge_agent.outbox import SqliteOutbox
from edge_agent.pseudonym import SiteSecret, pseudonym
from edge_agent.simulate import SyntheticGate
from edge_agent.uplink.publisher import OutboxPublisher
from edge_agent.uplink.settings import DeviceConnection
from edge_agent.wire import EventKind, GateEvent, encode_event
from edge_agent.wire.topics import DeviceIdentity
from stream_processor.runtime.devices import register_device
from stream_processor.stack.mosquitto import Mosquitto
from stream_processor.store.base import COLUMNS, StoredEvent
from tests.conftest import Pipeline, prepare_bridge_session, wait_for
from tests.support.privacy import assert_anonymized

pytestmark = pytest.mark.e2e

N = 10_000


def stored_rows(path) -> dict[str, tuple]:  # type: ignore[no-untyped-def]
    if not path.exists():
        return {}
    db = sqlite3.connect(path)
    try:
        return {r[0]: r for r in db.execute(f"SELECT {', '.join(COLUMNS)} FROM events")}
    except sqlite3.OperationalError:
        return {}
    finally:
        db.close()


def allow_slice_events(pipeline: Pipeline, secret: SiteSecret, residents: int) -> None:
    """A policy for tenant ``slice`` and a consent for each simulated resident."""
    import copy

    from stream_processor.policy.consent import ConsentRecord, ConsentStatus, GivenBy
    from tests.support.processor import BASE_POLICY, Harness

    h = Harness(pipeline, {"FACEGATE_STORE": "sqlite"})
    try:
        h.apply_policy({**copy.deepcopy(BASE_POLICY), "tenant": "slice"})
        now = int(time.time() * 1000)
        h.send_consents(
            [
                ConsentRecord(
                    tenant="slice",
                    site="site-1",
                    subject=pseudonym(secret, f"resident-{i:05d}"),
                    purpose="access_control",
                    status=ConsentStatus.GRANTED,
                    given_by=GivenBy.SELF,
                    evidence_ref=f"form-{i}",
                    at_ms=now,
                )  # fmt: skip
                for i in range(residents)
            ]
        )
    finally:
        h.close()


def test_ten_thousand_events_arrive_exactly_once_field_for_field(pipeline: Pipeline) -> None:
    ident = DeviceIdentity("slice", "site-1", "gate-1", f"dev-{pipeline.tag}")
    conf_path = register_device(
        pipeline.stack.settings(), ident, broker=Mosquitto(pipeline.stack.settings())
    )
    conn = DeviceConnection.load(__import__("pathlib").Path(conf_path))
    prepare_bridge_session(pipeline)
    secret = SiteSecret(ident.tenant, ident.site, b"s" * 32)
    allow_slice_events(pipeline, secret, residents=50)
    pipeline.start("bridge", "run", name="bridge")
    pipeline.start("processor", "worker", name="processor")

    gate = SyntheticGate(ident, secret, residents=50, seed=1)
    outbox = SqliteOutbox(pipeline.tmp / "outbox.sqlite")
    sent: list[GateEvent] = []
    for _ in range(N // 500):
        sent += outbox.append_many([gate.maker() for _ in range(500)])
    residents = [f"resident-{i:05d}" for i in range(50)]
    for event in sent:
        assert_anonymized(encode_event(event), forbidden=residents)

    publisher = OutboxPublisher(outbox, ident, conn.mqtt)
    publisher.start()
    t0 = time.monotonic()
    assert publisher.drain(timeout_s=120), f"outbox not drained: {outbox.depth()} left"
    publish_s = time.monotonic() - t0
    publisher.close()
    assert publisher.refused == 0

    kept = [e for e in sent if e.kind is not EventKind.UNKNOWN_FACE]
    wait_for(lambda: len(stored_rows(pipeline.store_path)) >= len(kept), 180, "all rows stored")
    total_s = time.monotonic() - t0
    time.sleep(2)  # anything extra (a duplicate row) would show up now
    rows = stored_rows(pipeline.store_path)
    assert len(rows) == len(kept)
    days = {"face_match": 30, "key_card": 90, "pin": 90, "manual_open": 90}
    for event in kept:
        expires = event.occurred_at_ms + days[event.kind.value] * 86_400_000
        expected = StoredEvent.from_event(event, stored_at_ms=0, expires_at_ms=expires)
        got = dict(zip(COLUMNS, rows[event.event_id], strict=True))
        want = dict(zip(COLUMNS, (getattr(expected, c) for c in COLUMNS), strict=True))
        got.pop("stored_at_ms"), want.pop("stored_at_ms")
        assert got == want
    # seq: no gap, no repeat (unknown faces are the only gaps, by design)
    assert sorted(r[1] for r in rows.values()) == sorted(e.seq for e in kept)
    assert pseudonym(secret, "resident-00001") in {
        r[COLUMNS.index("subject")] for r in rows.values()
    }
    print(
        f"\n{N} events: published in {publish_s:.2f}s, all stored after {total_s:.2f}s "
        f"({N / total_s:.0f} events/s end to end)"
    )
