"""The raw path: the least a pipeline from gate to store must do, as a ceiling for it.

    forward  plain MQTT v5 subscriber (paho, shared subscription, manual PUBACK sent
             when Kafka confirmed) → plain Kafka producer (the bridge's producer
             settings: acks=all, idempotent, same linger/batch/compression) on a topic
             made like the raw topic (same partitions and configs), keyed by tenant/site
    store    plain Kafka consumer (confluent-kafka) → decode → batched inserts into the
             same store schema (the project's SQLite or PostgreSQL store class, its own
             file or schema), offsets committed after each batch is stored

No validation, no consent or purpose, no metrics, no dead letters: what is left is
transport, decoding and the store. Unknown faces are skipped, as the pipeline never
stores them. Both run as separate processes from the stack's ``FACEGATE_*`` environment:

    .venv/bin/python benchmarks/raw_path.py forward
    .venv/bin/python benchmarks/raw_path.py store --sqlite /tmp/raw.sqlite
    .venv/bin/python benchmarks/raw_path.py store --postgres-schema rawpath

The Kafka clients log in like the project's processes (``runtime/kafka_auth.py``:
SASL/SCRAM when ``FACEGATE_KAFKA_AUTH`` is on) as the admin principal: the project's
role ACLs name only the project's topics and groups.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TOPIC = "facegate.bench.rawpath"
GROUP = "facegate-bench-rawpath"
SHARE = "rawpath"
RECEIVE_MAXIMUM = 5000  # the bridge's default in-flight window (FACEGATE_BRIDGE_MAX_INFLIGHT)


def ensure_topic() -> None:
    """The raw-path topic, made like the raw topic (partitions, retention, segments)."""
    from stream_processor.runtime.kafka_auth import Role, kafka_python_auth
    from stream_processor.runtime.settings import BrokerSettings, Topics
    from stream_processor.runtime.topics import TopicSpec, ensure_topics, topic_specs

    settings = BrokerSettings()
    raw = topic_specs(Topics())[0]
    ensure_topics(
        settings.kafka_bootstrap,
        [TopicSpec(TOPIC, raw.partitions, raw.configs)],
        auth=kafka_python_auth(settings, Role.ADMIN),
    )


def _stop_event() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def forward() -> None:
    import paho.mqtt.client as mqtt
    from confluent_kafka import Producer
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from edge_agent.wire.topics import EVENTS_FILTER
    from stream_processor.bridge.service import producer_config
    from stream_processor.bridge.settings import BridgeSettings
    from stream_processor.runtime.accounts import AccountBook
    from stream_processor.runtime.kafka_auth import Role, confluent_auth
    from stream_processor.runtime.layout import StateLayout
    from stream_processor.runtime.settings import BrokerSettings

    settings = BrokerSettings()
    config = producer_config(settings.kafka_bootstrap, BridgeSettings())
    config["client.id"] = "facegate-bench-rawpath"
    producer = Producer({**config, **confluent_auth(settings, Role.ADMIN)})
    creds = AccountBook(StateLayout(settings.state_dir)).bridge_credentials()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id="facegate-bench-rawpath",
        protocol=mqtt.MQTTv5,
        manual_ack=True,
    )
    client.username_pw_set(creds.username, creds.password)

    def delivered(mid: int) -> Any:
        def on_delivery(err: Any, _msg: Any) -> None:
            if err is None:  # unacked on error: Mosquitto sends it again
                client.ack(mid, 1)

        return on_delivery

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        parts = msg.topic.split("/")
        key = f"{parts[2]}/{parts[3]}".encode()
        producer.produce(TOPIC, msg.payload, key, on_delivery=delivered(msg.mid))

    def on_connect(c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if not rc.is_failure:
            c.subscribe(f"$share/{SHARE}/{EVENTS_FILTER}", qos=1)

    client.on_message = on_message
    client.on_connect = on_connect
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.ReceiveMaximum = RECEIVE_MAXIMUM
    client.connect(settings.host, settings.mqtt_port, keepalive=30, properties=props)
    stop = _stop_event()
    client.loop_start()
    try:
        while not stop.is_set():
            producer.poll(0.005)
    finally:
        client.loop_stop()
        producer.flush(10)
        client.disconnect()


def _open_store(args: argparse.Namespace) -> Any:
    if args.sqlite:
        from stream_processor.store.sqlite import SqliteEventStore

        return SqliteEventStore(Path(args.sqlite))
    from stream_processor.store.postgres import PostgresEventStore

    return PostgresEventStore(postgres_schema_dsn(args.postgres_schema))


def postgres_schema_dsn(schema: str) -> str:
    """The stack's PostgreSQL DSN with ``schema`` (made if missing) first in the path."""
    import psycopg

    from stream_processor.runtime.settings import BrokerSettings
    from stream_processor.store.factory import store_dsn
    from stream_processor.store.settings import StoreSettings

    dsn = store_dsn(BrokerSettings(), StoreSettings())
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    return f"{dsn} options='-csearch_path={schema}'"


def store(args: argparse.Namespace) -> None:
    from confluent_kafka import Consumer

    from edge_agent.wire import decode_event
    from stream_processor.runtime.kafka_auth import Role, confluent_auth
    from stream_processor.runtime.settings import BrokerSettings
    from stream_processor.store.base import StoredEvent

    settings = BrokerSettings()
    consumer = Consumer(
        {
            **confluent_auth(settings, Role.ADMIN),
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": GROUP,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([TOPIC])
    db = _open_store(args)
    stop = _stop_event()
    try:
        while not stop.is_set():
            msgs = consumer.consume(args.batch, 0.02)
            if not msgs:
                continue
            now = int(time.time() * 1000)
            rows = []
            for m in msgs:
                if m.error() is not None:
                    continue
                try:
                    event = decode_event(m.value())
                except Exception:  # noqa: BLE001, S112 - the raw path drops what it cannot read
                    continue
                if event.kind != "unknown_face":
                    rows.append(StoredEvent.from_event(event, now, None))
            db.put_many(rows)
            consumer.commit(asynchronous=True)
    finally:
        consumer.close()
        db.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("topic", help="make the raw-path topic (like the raw topic)")
    sub.add_parser("forward", help="MQTT → Kafka")
    st = sub.add_parser("store", help="Kafka → store")
    where = st.add_mutually_exclusive_group(required=True)
    where.add_argument("--sqlite", help="SQLite file of the raw path's rows")
    where.add_argument("--postgres-schema", help="schema of the stack's PostgreSQL database")
    st.add_argument("--batch", type=int, default=2000, help="records per consume and insert")
    args = ap.parse_args()
    if args.cmd == "topic":
        ensure_topic()
    elif args.cmd == "forward":
        forward()
    else:
        store(args)


if __name__ == "__main__":
    from benchmarks._machine import run

    run(main)
