"""Kafka consumer clients side by side on the processor's raw topic: CPU per record.

The processor reads raw events in batches and commits after each batch. This
pre-loads a private Kafka (free ports, temporary state) with gate events and
reads them all with each client, in a consumer group of its own, committing
after every batch as the processor does:

- aiokafka 0.14 ``getmany`` (what faust-streaming is built on);
- confluent-kafka (librdkafka) ``consume(n)`` run in a thread from asyncio.

    .venv/bin/python benchmarks/consume_bench.py --events 300000

With ``FACEGATE_KAFKA_AUTH=true`` the private Kafka requires SASL/SCRAM and ACLs, and
both clients log in as the admin principal (``runtime/kafka_auth.py``), so the
figures include the login; without it they connect in the clear.

Prints records/s (wall) and records per CPU-second of this process (the
figure that matters on a shared machine), for each client, twice, interleaved.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from _machine import load_line, machine_line, message_size_line, private_stack, run
from processor_bench import make_events, preload

from stream_processor.runtime.kafka_auth import Role, client_config
from stream_processor.runtime.settings import BrokerSettings, Topics


async def with_aiokafka(
    settings: BrokerSettings, topic: str, n: int, batch: int
) -> tuple[float, float]:
    from aiokafka import AIOKafkaConsumer

    c = AIOKafkaConsumer(
        topic, **client_config(Role.ADMIN, settings, "aiokafka"),
        group_id=f"cmp-aio-{time.time_ns()}",
        enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=batch,
        max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024,
    )  # fmt: skip
    await c.start()
    try:
        got, wall, cpu = 0, time.perf_counter(), time.process_time()
        while got < n:
            fetched = await c.getmany(timeout_ms=250, max_records=batch)
            values = [r.value for records in fetched.values() for r in records]
            got += len(values)
            if fetched:
                await c.commit({tp: rs[-1].offset + 1 for tp, rs in fetched.items()})
        return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await c.stop()


async def with_confluent(
    settings: BrokerSettings, topic: str, n: int, batch: int
) -> tuple[float, float]:
    from confluent_kafka import Consumer

    c = Consumer({
        **client_config(Role.ADMIN, settings, "confluent"), "group.id": f"cmp-ck-{time.time_ns()}",
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "fetch.max.bytes": 64 * 1024 * 1024, "max.partition.fetch.bytes": 4 * 1024 * 1024,
    })  # fmt: skip
    c.subscribe([topic])
    loop = asyncio.get_running_loop()
    try:
        got, wall, cpu = 0, time.perf_counter(), time.process_time()
        while got < n:
            msgs = await loop.run_in_executor(None, c.consume, batch, 0.25)
            values = [m.value() for m in msgs if m.error() is None]
            got += len(values)
            if msgs:
                await loop.run_in_executor(None, lambda: c.commit(asynchronous=False))
        return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        c.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    print(machine_line())
    print(f"Kafka auth: {'on' if BrokerSettings().kafka_auth else 'off'}")
    env = {"FACEGATE_TOPIC_RAW_PARTITIONS": "6", "FACEGATE_STORE": "sqlite"}
    with private_stack("cbench", env) as st:
        topics = Topics()
        values = make_events(args.events, 50, 4, 200)
        preload(st.settings, topics.raw, values, 50)
        print(f"{args.events:,} records in {topics.raw} (6 partitions),"
              f" {message_size_line(values, 'records')}; batches of {args.batch},"
              " a commit after each")  # fmt: skip
        del values
        clients = {"aiokafka getmany": with_aiokafka, "confluent-kafka consume": with_confluent}
        for r in range(args.rounds):
            for name, read in clients.items():
                wall, cpu = asyncio.run(
                    read(st.settings, topics.raw, args.events, args.batch)
                )
                print(f"round {r + 1} {name:24s} {args.events / wall:10,.0f} records/s wall "
                      f"{args.events / cpu:10,.0f} per CPU-second "
                      f"({cpu / args.events * 1e6:.1f} µs CPU per record); "
                      f"{load_line()}")  # fmt: skip


if __name__ == "__main__":
    run(main)
