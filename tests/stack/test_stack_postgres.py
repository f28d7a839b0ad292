"""``facegate stack up`` with FACEGATE_STORE=postgres starts the project's own cluster
(idempotent), and a worker stores into it."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import FACEGATE, Pipeline, free_ports, wait_for
from tests.support.processor import BASE_POLICY, make_event

pytestmark = pytest.mark.component


def test_stack_up_starts_postgres_and_a_worker_writes_to_it(pipeline: Pipeline) -> None:
    from stream_processor.stack.postgres import Postgres
    from stream_processor.store.postgres import PostgresEventStore
    from stream_processor.store.settings import StoreSettings
    from tests.support.processor import Harness

    (port,) = free_ports(1)
    target = {"FACEGATE_STORE": "postgres", "FACEGATE_POSTGRES_PORT": str(port)}
    h = Harness(pipeline, target)
    pg = Postgres(pipeline.stack.settings(), StoreSettings(store="postgres", postgres_port=port))
    try:
        for _ in range(2):  # idempotent
            up = subprocess.run(
                [FACEGATE, "stack", "up"], env=pipeline.env, capture_output=True, text=True,
                timeout=300,
            )  # fmt: skip
            assert up.returncode == 0, up.stderr
            assert f"postgres  : running pid {pg.status().pid} on 127.0.0.1:{port}" in up.stdout
        status = subprocess.run(
            [FACEGATE, "stack", "status"], env=pipeline.env, capture_output=True, text=True
        )
        assert status.returncode == 0 and "postgres  : running" in status.stdout
        pipeline.create_topics()
        h.apply_policy(BASE_POLICY)
        pipeline.start("processor", "worker", name="p1")
        events = [make_event("key_card", seq=i) for i in range(50)]
        h.send_events(events)
        store = PostgresEventStore(pg.dsn())
        try:
            wait_for(lambda: store.count() >= 50, 60, "rows in PostgreSQL")
            assert store.get(events[0].event_id) is not None
        finally:
            store.close()
    finally:
        pipeline.stop_all()
        h.close()
        pg.down()
    assert not pg.status().running
