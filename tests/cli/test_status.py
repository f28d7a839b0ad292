"""``facegate status``: what is up and what is down, decided purely, probed for real."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from stream_processor.errors import BrokerError
from stream_processor.runtime.replication import TopicReplication
from stream_processor.runtime.status import Observations, Targets, assess, observe
from tests.conftest import FACEGATE, REPO, Pipeline, StackHandle, free_ports, wait_for

GROUPS = {"bridges": "b-commands", "processor workers": "p.raw", "erasure worker": "p-erasure"}


def _targets(**kw: object) -> Targets:
    base: dict[str, object] = {
        "kafka_bootstrap": "127.0.0.1:1", "mqtt": ("127.0.0.1", 2), "web_url": "http://w:3",
        "groups": GROUPS, "raw_topic": "raw", "dlq_topic": "dlq", "lag_group": "p.raw",
        "dlq_window_s": 300.0,
    }  # fmt: skip
    return Targets(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.unit
def test_everything_up_is_ok() -> None:
    seen = Observations(None, True, None, {name: 1 for name in GROUPS}, lag=7, dead_letters=30)
    report = assess(_targets(), seen)
    assert report.ok
    assert [p.name for p in report.parts] == [
        "kafka", "mqtt", "bridges", "processor workers", "erasure worker", "web"
    ]
    assert report.consumer_lag == 7 and report.dead_letters_per_minute == 6.0


@pytest.mark.unit
def test_a_group_without_members_is_down() -> None:
    seen = Observations(None, True, None, {"bridges": 2, "processor workers": 0,
                                           "erasure worker": 1}, lag=0, dead_letters=0)  # fmt: skip
    report = assess(_targets(), seen)
    assert not report.ok
    down = [p for p in report.parts if not p.up]
    assert [p.name for p in down] == ["processor workers"]
    assert down[0].detail == "0 running (group p.raw)"


@pytest.mark.unit
def test_kafka_down_leaves_the_groups_unknown_and_down() -> None:
    report = assess(_targets(postgres=("127.0.0.1", 5)), Observations("no Kafka", False, "refused"))
    assert not report.ok and all(not p.up for p in report.parts)
    assert {p.name for p in report.parts} >= {"postgres", "web"}
    assert report.consumer_lag is None and report.dead_letters_per_minute is None


@pytest.mark.unit
def test_a_probe_that_fails_midway_is_reported_not_raised() -> None:
    class Failing:
        def members(self, group: str) -> int:
            raise BrokerError("describe failed")

        def lag(self, group: str, topic: str) -> int:
            raise AssertionError("not reached")

        def records_since(self, topic: str, since_ms: int) -> int:
            raise AssertionError("not reached")

        def close(self) -> None:
            self.closed = True

    probe = Failing()
    seen = observe(_targets(), lambda _: probe, tcp=lambda h, p: True, http=lambda u: None)
    assert seen.kafka_error == "describe failed" and probe.closed
    assert not assess(_targets(), seen).ok


@pytest.mark.unit
def test_replication_problems_fail_the_status_with_the_parts_up() -> None:
    up = {name: 1 for name in GROUPS}
    seen = Observations(None, True, None, up, lag=0, dead_letters=0, replication=(
        TopicReplication("facegate.events.raw", 3, 2, under_replicated=1, in_sync=2),
        TopicReplication("facegate-processor-consent-changelog", 1, 1, in_sync=1),
        TopicReplication("facegate.consent", 3, 2, in_sync=3),
    ))  # fmt: skip
    report = assess(_targets(kafka_nodes=3), seen)
    assert all(p.up for p in report.parts) and not report.ok
    assert [(p.topic, p.kind) for p in report.replication] == [
        ("facegate-processor-consent-changelog", "replicas"), ("facegate.events.raw", "sync")
    ]  # fmt: skip
    assert report.as_dict()["replication_problems"][1]["kind"] == "sync"
    # One broker: one replica is what its size asks.
    assert assess(_targets(kafka_nodes=1), seen).replication[0].kind == "sync"


@pytest.mark.unit
def test_replication_not_seen_is_a_problem_and_kafka_down_says_it_once() -> None:
    class Probe:
        def members(self, group: str) -> int:
            return 1

        def lag(self, group: str, topic: str) -> int:
            return 0

        def records_since(self, topic: str, since_ms: int) -> int:
            return 0

        def close(self) -> None:
            pass

    def refused() -> list[TopicReplication]:
        raise BrokerError("reading the configs of topic facegate.consent failed (error 29)")

    seen = observe(_targets(), lambda _: Probe(), tcp=lambda h, p: True, http=lambda u: None,
                   replication=refused)  # fmt: skip
    report = assess(_targets(kafka_nodes=3), seen)
    assert not report.ok and [p.kind for p in report.replication] == ["unknown"]
    assert "error 29" in report.replication[0].detail
    down = assess(_targets(kafka_nodes=3), Observations("no Kafka", True, None))
    assert down.replication == () and not down.ok


def _status(env: dict[str, str]) -> tuple[int, dict[str, object]]:
    done = subprocess.run([FACEGATE, "status", "--json", "--window", "1"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert "Traceback" not in done.stderr and done.stdout.startswith("{"), done.stderr
    return done.returncode, json.loads(done.stdout)


@pytest.mark.component
def test_status_against_the_real_brokers(
    running_stack: StackHandle, request: pytest.FixtureRequest
) -> None:
    from kafka.admin import NewTopic

    from stream_processor.runtime.settings import Topics
    from tests.support.kafka import admin_client, consumer, grant_pipeline, producer, revoke

    (web_port,) = free_ports(1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEGATE_")}
    env.update(running_stack.env, FACEGATE_WEB_PORT=str(web_port),
               FACEGATE_BRIDGE_SHARE_GROUP=f"status-{web_port}",
               FACEGATE_PROCESSOR_APP_ID=f"status-{web_port}",
               FACEGATE_TOPIC_DLQ=f"status-dlq-{web_port}")  # fmt: skip
    # facegate status runs as its own role, held to the production plan on these names.
    names = Topics(dlq=env["FACEGATE_TOPIC_DLQ"])
    app = f"status-{web_port}"
    grants = grant_pipeline(running_stack, names, app, f"{app}-erasure", bridge_group=app)
    request.addfinalizer(lambda: revoke(running_stack, grants, app))
    code, doc = _status(env)
    parts = {p["name"]: p for p in doc["parts"]}  # type: ignore[union-attr, index]
    assert code == 1 and doc["ok"] is False
    assert parts["kafka"]["up"] and parts["mqtt"]["up"], parts
    assert not parts["bridges"]["up"] and not parts["web"]["up"]
    assert doc["dead_letters_per_minute"] == 0 and doc["consumer_lag"] == 0
    admin = admin_client(running_stack)
    admin.create_topics([NewTopic(env["FACEGATE_TOPIC_DLQ"], 2, 1)])
    admin.close()
    refused = producer(running_stack)
    for _ in range(3):
        refused.send(env["FACEGATE_TOPIC_DLQ"], b"refused")
    refused.flush(30)
    refused.close()
    # A process in the bridges' consumer group is a running bridge, as far as Kafka knows.
    member = consumer(running_stack, "facegate.edge.commands",
                      group_id=f"status-{web_port}-commands")  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not member.assignment():
            member.poll(timeout_ms=500)
        code, doc = _status(env)
    finally:
        member.close()
    parts = {p["name"]: p for p in doc["parts"]}  # type: ignore[union-attr, index]
    assert parts["bridges"]["up"] and parts["bridges"]["detail"].startswith("1 running")
    assert doc["dead_letters_per_minute"] == 3.0
    assert code == 1  # the workers and the web app still do not run


@pytest.mark.e2e
def test_status_of_a_running_pipeline(pipeline: Pipeline) -> None:
    """Every part started as an operator starts it shows up; a stopped worker shows down."""
    (web_port,) = free_ports(1)
    pipeline.extra_env.update(
        FACEGATE_WEB_PORT=str(web_port),
        FACEGATE_ERASURE_DB_PATH=str(pipeline.tmp / "erasure.sqlite"),
        FACEGATE_WEB_CAMERAS_PATH=str(REPO / "deploy/config/cameras.example.yaml"),
    )
    env = dict(pipeline.env)
    pipeline.start("bridge", "run", name="bridge")
    worker = pipeline.start("processor", "worker", name="worker")
    pipeline.start("erasure", "worker", name="erasure")
    pipeline.start("web", "serve", name="web")

    seen: list[object] = []

    def all_up() -> bool:
        code, doc = _status(env)
        seen[:] = [doc]
        return code == 0 and doc["ok"] is True

    try:
        wait_for(all_up, 180, "every part of the pipeline up")
    except AssertionError:
        logs = {n: pipeline.log(n)[-1500:] for n in ("bridge", "worker", "erasure", "web")}
        raise AssertionError(f"{seen} {logs}") from None
    code, doc = _status(env)
    assert code == 0 and doc["consumer_lag"] == 0
    assert {p["name"] for p in doc["parts"]} == {  # type: ignore[union-attr, index]
        "kafka", "mqtt", "bridges", "processor workers", "erasure worker", "web"
    }
    worker.terminate()
    worker.wait(60)

    def workers_down() -> bool:
        code, doc = _status(env)
        parts = {p["name"]: p for p in doc["parts"]}  # type: ignore[union-attr, index]
        return code == 1 and not parts["processor workers"]["up"]

    wait_for(workers_down, 120, "the stopped worker reported down")
