"""A worker whose send to Kafka fails stops with the error and commits nothing past it
(real brokers, the production ACLs). The processor role loses WRITE on the dead-letter
topic: Kafka refuses the dead letter of a poison record at once, as a send to a broker
that is gone fails after ``FACEGATE_PROCESSOR_PRODUCER_TIMEOUT_S``. The worker keeps the
poison's offset (it retries the letter, never drops it); at Faust's next offset commit
the failed send stops it, with a non-zero exit. Given WRITE back, the next worker
reads the poison again and dead-letters it."""

from __future__ import annotations

import time

import pytest

from edge_agent.errors import WireError
from edge_agent.wire import decode_event
from stream_processor.dead_letter import DeadLetter, decode_dead_letter
from stream_processor.runtime.kafka_acls import Grant, to_acl
from stream_processor.runtime.kafka_auth import Role
from tests.conftest import SUITE_KAFKA_AUTH, wait_for
from tests.support.kafka import admin_client
from tests.support.processor import BASE_POLICY, Harness, grant_record, make_event

pytestmark = pytest.mark.component


def acls(h: Harness, change: str) -> None:
    """Delete or create (again) the processor role's WRITE on the pipeline's DLQ."""
    grant = Grant(Role.PROCESSOR, "WRITE", "topic", h.topics.dlq)
    assert grant in h.p.grants, "the pipeline's plan grants the processor WRITE on its DLQ"
    admin = admin_client(h.p.stack)
    try:
        if change == "delete":
            admin.delete_acls([to_acl(grant)])
        else:
            admin.create_acls([to_acl(grant)])
        # The controller answers once it holds the change; the broker authorizes by it
        # only once it applied that metadata (a letter sent before then is accepted,
        # and the worker never fails). Its own listing shows when it has.
        deadline = time.monotonic() + 30
        while (to_acl(grant) in admin.describe_acls(to_acl(grant))[0]) != (change == "create"):
            assert time.monotonic() < deadline, f"the broker still lists the ACL as before {change}"
            time.sleep(0.2)
    finally:
        admin.close()


@pytest.mark.skipif(not SUITE_KAFKA_AUTH, reason="needs Kafka ACLs (FACEGATE_TEST_KAFKA_AUTH=0)")
@pytest.mark.parametrize("store_kind", ["sqlite"], indirect=True)
def test_a_failed_send_stops_the_worker_and_nothing_is_committed_past_it(
    harness: Harness,
) -> None:
    h = harness
    h.apply_policy(BASE_POLICY)
    worker = h.p.start("processor", "worker", name="p1")
    probe = make_event("key_card", seq=1)
    h.send_events([probe])
    wait_for(lambda: h.store().get(probe.event_id) is not None, 120, "the worker running")

    poison = b'{"seq": ' + str(2**64).encode() + b"}"
    with pytest.raises(WireError) as refused:
        decode_event(poison)
    acls(h, "delete")
    try:
        poison_at = h.producer().send(h.topics.raw, key=b"acme/site-1", value=poison).get(30)
        time.sleep(2)  # the letter is refused; then a ledger record makes Faust commit
        h.send_consents([grant_record(1)])
        started = time.monotonic()
        wait_for(lambda: worker.poll() is not None, 60, "the worker stopping")
        stopped_s = time.monotonic() - started
    finally:
        acls(h, "create")
    assert worker.returncode != 0
    log = h.p.log("p1")
    # The error line of the CLI's handler (Faust's shutdown after a crash also logs
    # asyncio's complaints about the failed send's futures: not asserted here).
    assert "\nError: a send to Kafka failed (TopicAuthorizationFailedError" in log, log[-3000:]
    print(f"\nworker stopped {stopped_s:.1f} s after the ledger record, exit {worker.returncode}")

    again = h.p.start("processor", "worker", name="p2")

    def letters() -> list[DeadLetter]:
        return [decode_dead_letter(v) for _, v in h.read_topic(h.topics.dlq)]

    wait_for(lambda: len(letters()) >= 1, 120, "the poison dead-lettered by the next worker")
    assert [(x.reason, x.source_offset) for x in letters()] == [
        (refused.value.reason, poison_at.offset)
    ]
    assert again.poll() is None, h.p.log("p2")
