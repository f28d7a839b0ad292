"""Fixtures of the bridge tests: a PRIVATE stack (its brokers are killed and
restarted here, which must not disturb the shared session stack), pipelines on
it, devices, fast publishers and Kafka readers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    SUITE_KAFKA_AUTH,
    Pipeline,
    StackHandle,
    broker_logs_on_failure,
    free_ports,
    make_state_dir,
    prepare_bridge_session,
    stack_env,
)
from tests.support.kafka import confluent_config, forget, register

TENANT = "acme"

#: Stored for 90 days by this policy, and no consent needed: key cards and PINs.
POLICY: dict[str, Any] = {
    "tenant": TENANT,
    "legal_ceiling": "3y",
    "purposes": {"access_control": {}},
    "camera_purposes": ["access_control"],
    "retention": {
        "face_match": {"access_control": "30d"},
        "key_card": {"access_control": "90d"},
        "pin": {"access_control": "90d"},
        "manual_open": {"access_control": "90d"},
        "unknown_face": {"access_control": 0},
    },
    "transport": {"raw_retention": "1d", "dlq_retention": "7d"},
}


@pytest.fixture(scope="session")
def bridge_stack() -> Iterator[StackHandle]:
    from stream_processor.stack.stack import Stack

    state = make_state_dir("facegate-bridgetest-")
    env = stack_env(state, free_ports(4))
    env["FACEGATE_KAFKA_AUTH"] = "true" if SUITE_KAFKA_AUTH else "false"
    handle = StackHandle(env=env, state_dir=state)
    stack: Stack = handle.stack()
    try:
        with broker_logs_on_failure(state):
            stack.up()
        register(handle.settings())
        yield handle
    finally:
        forget(handle.settings())
        stack.down()
        shutil.rmtree(state, ignore_errors=True)


@dataclass
class BridgeRig:
    """One test's pipeline on the private stack, with helpers."""

    p: Pipeline

    @property
    def settings(self) -> Any:
        return self.p.stack.settings()

    @property
    def bootstrap(self) -> str:
        return str(self.settings.kafka_bootstrap)

    def device(self, site: str, gate: str = "gate-1", device: str = "cam-1") -> Any:
        from edge_agent.uplink.settings import DeviceConnection
        from edge_agent.wire.topics import DeviceIdentity
        from stream_processor.runtime.devices import register_device
        from stream_processor.stack.mosquitto import Mosquitto

        ident = DeviceIdentity(TENANT, site, gate, device)
        return DeviceConnection.load(
            Path(register_device(self.settings, ident, tls=False, broker=Mosquitto(self.settings)))
        )

    def start_bridge(
        self, name: str = "bridge", instance: str | None = None, own_port: bool = False
    ) -> Any:
        if instance is not None:
            self.p.extra_env["FACEGATE_BRIDGE_INSTANCE"] = instance
        if own_port:  # instances side by side each need their own metrics port
            self.p.extra_env["FACEGATE_BRIDGE_METRICS_PORT"] = str(free_ports(1)[0])
        return self.p.start("bridge", "run", name=name)

    def prepare_session(
        self, instance: str | None = None, scope: str = "[]", mode: str = "exclusive"
    ) -> None:
        from stream_processor.bridge.session import ensure_bridge_session
        from stream_processor.bridge.settings import BridgeSettings
        from stream_processor.runtime.accounts import AccountBook
        from stream_processor.runtime.layout import StateLayout

        if instance is None:
            prepare_bridge_session(self.p)
            return
        s = self.settings
        creds = AccountBook(StateLayout(s.state_dir)).bridge_credentials()
        bs = BridgeSettings(
            share_group=f"bridge-{self.p.tag}",
            instance=instance,
            scope=json.loads(scope),
            subscription=mode,  # type: ignore[arg-type]
        )
        ensure_bridge_session(s.host, s.mqtt_port, creds, bs)

    def apply_policy(self) -> None:
        import yaml

        from tests.conftest import FACEGATE

        path = self.p.tmp / "policy.yaml"
        path.write_text(yaml.safe_dump(POLICY))
        result = subprocess.run(
            [FACEGATE, "policy", "apply", str(path)],
            env=self.p.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr

    def publish(self, conn: Any, payloads: list[bytes]) -> PahoPublisher:
        """Publish at QoS 1 in the background; ``wait()`` returns 0 once every PUBACK came."""
        return PahoPublisher(conn, payloads)

    def mosquitto_pub(self, conn: Any, payloads: list[bytes], topic: str | None = None) -> Any:
        """Publish lines at QoS 1 with Debian's mosquitto_pub (fast, C); returns the process.

        Not for loss tests: mosquitto_pub 2.0.11 ``-l`` can exit at end of input before
        its last messages were sent (seen here: the last 40 of 5,000 never arrived)."""
        from edge_agent.wire.topics import event_topic

        path = Path(tempfile.mkstemp(prefix="lines-", dir=self.p.tmp)[1])
        path.write_bytes(b"\n".join(payloads) + b"\n")
        m = conn.mqtt
        argv = [
            "mosquitto_pub", "-h", m.host, "-p", str(m.port), "-u", m.username,
            "-P", m.password.get_secret_value(), "-V", "5", "-q", "1",
            "-t", topic or event_topic(conn.identity), "-l",
        ]  # fmt: skip
        return subprocess.Popen(argv, stdin=path.open("rb"), stderr=subprocess.PIPE)

    def read(self, topic: str) -> list[tuple[bytes | None, bytes]]:
        return read_topic(self.bootstrap, topic)

    def count(self, topic: str) -> int:
        """Records in the topic; -1 while Kafka cannot tell (e.g. restarting)."""
        from confluent_kafka import KafkaException

        try:
            return topic_size(self.bootstrap, topic)
        except KafkaException:
            return -1

    def stored_ids(self) -> list[str]:
        from stream_processor.store.sqlite import SqliteEventStore

        if not self.p.store_path.exists():
            return []
        store = SqliteEventStore(self.p.store_path)
        try:
            return list(store.iter_event_ids())
        finally:
            store.close()

    def metrics(self, port: int) -> str:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return str(r.read().decode())

    def health(self, port: int) -> tuple[int, dict[str, Any]]:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                return int(r.status), dict(json.loads(r.read()))
        except urllib.error.HTTPError as exc:
            return int(exc.code), dict(json.loads(exc.read()))


class PahoPublisher:
    """A device publishing a list at QoS 1 from a thread, counting broker PUBACKs."""

    def __init__(self, conn: Any, payloads: list[bytes]) -> None:
        import threading

        import paho.mqtt.client as mqtt

        from edge_agent.wire.topics import event_topic

        m = conn.mqtt
        self.n = len(payloads)
        self.acked = 0
        self.refused = 0
        self.stderr = None
        self._done = threading.Event()
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"pub-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self._client.username_pw_set(m.username, m.password.get_secret_value())
        self._client.max_inflight_messages_set(200)
        self._client.on_publish = self._on_publish
        self._client.connect(m.host, m.port)
        self._client.loop_start()
        topic = event_topic(conn.identity)
        self._thread = threading.Thread(
            target=lambda: [self._client.publish(topic, p, qos=1) for p in payloads],
            daemon=True,
        )
        self._thread.start()

    def _on_publish(self, c: Any, u: Any, mid: int, rc: Any, p: Any) -> None:
        self.acked += 1
        self.refused += rc.is_failure
        if self.acked >= self.n:
            self._done.set()

    def wait(self, timeout_s: float = 120) -> int:
        ok = self._done.wait(timeout_s)
        self._client.disconnect()
        self._client.loop_stop()
        return 0 if ok and not self.refused else 1


@pytest.fixture
def rig(bridge_stack: StackHandle, tmp_path: Path) -> Iterator[BridgeRig]:
    p = Pipeline(stack=bridge_stack, tag=uuid.uuid4().hex[:10], tmp=tmp_path)
    p.extra_env.update(
        {
            "FACEGATE_STORE": "sqlite",
            "FACEGATE_BRIDGE_METRICS_PORT": str(free_ports(1)[0]),
            "FACEGATE_LOG_LEVEL": "INFO",
        }
    )
    p.create_topics()
    try:
        yield BridgeRig(p)
    finally:
        p.stop_all()


def topic_size(bootstrap: str, topic: str) -> int:
    """Records in the topic (sum of end offsets; our topics are never compacted)."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({**confluent_config(bootstrap), "group.id": f"size-{uuid.uuid4().hex}"})
    try:
        meta = c.list_topics(topic, timeout=10)
        total = 0
        for pid in meta.topics[topic].partitions:
            low, high = c.get_watermark_offsets(TopicPartition(topic, pid), timeout=10)
            total += high - low
        return total
    finally:
        c.close()


def read_topic(
    bootstrap: str, topic: str, timeout_s: float = 60
) -> list[tuple[bytes | None, bytes]]:
    """Every record of the topic, read from the beginning up to the current end."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    c = Consumer(
        {
            **confluent_config(bootstrap),
            "group.id": f"read-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    try:
        meta = c.list_topics(topic, timeout=10)
        parts = list(meta.topics[topic].partitions)
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts if ends[p] > 0])
        out: list[tuple[bytes | None, bytes]] = []
        pos = dict.fromkeys(parts, 0)
        deadline = time.monotonic() + timeout_s
        while any(pos[p] < ends[p] for p in parts) and time.monotonic() < deadline:
            for m in c.consume(10_000, 1.0):
                if m.error():
                    continue
                out.append((m.key(), m.value()))
                pos[m.partition()] = m.offset() + 1
        return out
    finally:
        c.close()


def event_ids(records: list[tuple[bytes | None, bytes]]) -> list[str]:
    return [json.loads(v)["event_id"] for _, v in records]


def events_for(site: str, n: int, start_seq: int = 0, device: str = "cam-1") -> list[Any]:
    """Key-card and PIN events (stored under POLICY without consent)."""
    from tests.support.processor import make_event

    kinds = ("key_card", "pin")
    return [
        make_event(kinds[i % 2], subject_id=i % 50, site=site, device=device, seq=start_seq + i)
        for i in range(n)
    ]


def wait_proc(proc: Any, timeout_s: float = 120) -> None:
    rc = proc.wait(timeout_s)
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert rc == 0, f"publisher failed ({rc}): {err}"


__all__ = ["POLICY", "TENANT", "BridgeRig", "event_ids", "events_for", "os"]
