"""One bridge instance: MQTT v5 (manual acks, persistent session) → Kafka (acks=all,
idempotent), and Kafka commands → MQTT.

Uplink: every delivery from the shared subscriptions of device events and
device acks is validated, produced to its Kafka topic (or, refused, to the
dead-letter topic) and acknowledged to MQTT only after Kafka confirmed that
record; PUBACKs go out in arrival order. The broker sends at most
``max_inflight`` unacknowledged deliveries (MQTT Receive Maximum), so a slow
Kafka stops the flow instead of filling memory. If Kafka fails a send, the
MQTT connection is dropped without acknowledging anything further, and the
broker redelivers every unacknowledged message when we reconnect with the
same persistent session: nothing is lost; duplicates are dropped by event id
downstream.

Downlink: ``commands`` records are published with QoS 1 to the site's command
topic; the Kafka offset is committed only after the broker's PUBACK. After
every MQTT reconnect the relay goes back ``commands_replay_s`` in the commands
topic and relays those again: a Mosquitto crash loses what it acknowledged
since its last save, including commands queued for offline gates.

Threads: the asyncio loop owns the MQTT socket and serves librdkafka's
delivery reports too (``poll(0)`` every couple of milliseconds, never a
blocking ``flush``), so acknowledgement bookkeeping needs no locks and no
hand-over between threads; released PUBACKs are written in batches.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry

from edge_agent.errors import WireError
from edge_agent.wire.commands import decode_command
from edge_agent.wire.topics import site_command_topic
from stream_processor.bridge.acks import OrderedAcks, Pending
from stream_processor.bridge.confirms import Confirmer
from stream_processor.bridge.metrics import BridgeMetrics
from stream_processor.bridge.mqtt_codec import Publish
from stream_processor.bridge.mqtt_link import ConnectionLost, ConnectRefused, MqttLink
from stream_processor.bridge.settings import BridgeSettings
from stream_processor.bridge.validate import ACK, EVENT, STATUS, Accepted, check_any
from stream_processor.dead_letter import DeadLetter
from stream_processor.errors import BrokerError
from stream_processor.runtime.accounts import Credentials
from stream_processor.runtime.kafka_auth import Role, confluent_auth
from stream_processor.runtime.settings import BrokerSettings, Topics

log = logging.getLogger(__name__)

#: How often delivery reports are served while deliveries await Kafka, and when idle
#: (then only for error callbacks and downlink dead letters).
SERVE_BUSY_S, SERVE_IDLE_S = 0.002, 0.05


def producer_config(bootstrap: str, settings: BridgeSettings) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "client.id": settings.client_id,
        # Idempotence implies acks=all, bounded in-flight requests and ordered retries.
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": settings.linger_ms,
        "batch.size": settings.batch_bytes,
        "compression.type": settings.compression,
        # The Java client's partitioner: a site lands on the partition every other
        # producer of the project (kafka-python, aiokafka, Java) picks for its key.
        "partitioner": "murmur2_random",
        "message.timeout.ms": settings.delivery_timeout_ms,
        "queue.buffering.max.messages": max(100_000, 4 * settings.max_inflight),
        "reconnect.backoff.max.ms": 2000,
        # A paused or cut-off broker keeps its connections open and answers nothing: a
        # produce request to it is given up only after socket.timeout.ms (60 s by
        # default), and only then are its batches re-sent to the new leader (the
        # idempotent producer keeps them once and in order). The broker waits up to
        # request.timeout.ms for the in-sync replicas (acks=all); the client waits a
        # little longer than that, not a minute.
        "request.timeout.ms": 10_000,
        "socket.timeout.ms": 12_000,
        # Leader moves are learnt from request errors; a silent broker gives none.
        "topic.metadata.refresh.interval.ms": 10_000,
        "metadata.max.age.ms": 30_000,
    }


def make_producer(
    bootstrap: str,
    settings: BridgeSettings,
    error_cb: Callable[[Any], None] | None = None,
    auth: Mapping[str, str] | None = None,
) -> Any:
    from confluent_kafka import Producer

    config = {**producer_config(bootstrap, settings), **(auth or {})}
    if error_cb is not None:
        config["error_cb"] = error_cb
    return Producer(config)


def make_commands_consumer(
    bootstrap: str, settings: BridgeSettings, topic: str, auth: Mapping[str, str] | None = None
) -> Any:
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            **(auth or {}),
            "bootstrap.servers": bootstrap,
            "group.id": f"{settings.share_group}-commands",
            "client.id": f"{settings.client_id}-commands",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([topic])
    return consumer


def tls_context(ca_file: str) -> ssl.SSLContext:
    """Verify the broker against the project's CA (and its host name)."""
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class Bridge:
    def __init__(
        self,
        stack: BrokerSettings,
        settings: BridgeSettings,
        topics: Topics,
        credentials: Credentials,
        producer: Callable[[Callable[[Any], None]], Any] | None = None,
        registry: CollectorRegistry = REGISTRY,
        clock: Callable[[], float] = time.time,
        commands_consumer: Callable[[], Any] | None = None,
    ) -> None:
        self._stack = stack
        self._s = settings
        self._topics = topics
        self._creds = credentials
        self._clock = clock
        self._limits = settings.limits()
        self.metrics = BridgeMetrics(registry)
        auth = confluent_auth(stack, Role.BRIDGE)
        self._make_producer = producer or functools.partial(
            make_producer, stack.kafka_bootstrap, settings, auth=auth
        )
        self._producer_fatal = threading.Event()
        self._producer = self._make_producer(self._on_kafka_error)
        self._make_consumer = commands_consumer or (
            lambda: make_commands_consumer(stack.kafka_bootstrap, settings, topics.commands, auth)
        )
        self._produced_event = self.metrics.produced.labels(EVENT)
        self._produced_ack = self.metrics.produced.labels(ACK)
        self._acks = OrderedAcks(self._release)
        self._confirmer = (
            Confirmer(settings.confirm_interval_ms / 1000, clock)
            if settings.confirm_delivery
            else None
        )
        self.metrics.inflight.set_function(lambda: len(self._acks))
        # Loop-thread state between two serves of the delivery reports:
        self._ready: list[int] = []  # released packet ids
        self._latencies: list[float] = []  # MQTT receipt → Kafka confirmation
        self._counts = {EVENT: 0, ACK: 0, STATUS: 0}  # confirmed accepted records, by kind
        self._kind_topics = {ACK: self._topics.acks, STATUS: self._topics.device_status}
        self._served_at = 0.0
        self._received = 0
        self._kafka_failed = threading.Event()
        self._link: MqttLink | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Set on a reconnect: the relay replays the commands since this time (ms).
        self._replay_from_ms: int | None = None

    # -- health ----------------------------------------------------------------
    def health(self) -> dict[str, object]:
        connected = self._link is not None and self._link.connected
        failing = self._kafka_failed.is_set()
        return {
            "healthy": connected and not failing,
            "mqtt_connected": connected,
            "kafka_failing": failing,
            "inflight": len(self._acks),
        }

    # -- MQTT deliveries (loop thread) -------------------------------------------
    def _on_publish(self, msg: Publish) -> None:
        received = self._clock()
        received_ms = int(received * 1000)
        self._received += 1
        token = self._acks.add(msg.packet_id) if msg.qos else None
        kind, verdict = check_any(msg.topic, msg.payload, self._limits, received_ms)
        # Confirmed back to the device once Kafka holds it (raw or dead letter).
        ref: int | str | None = None
        if self._confirmer is not None:
            if verdict.seq >= 0:
                ref = verdict.seq
            elif kind == ACK and isinstance(verdict, Accepted):
                ref = verdict.command_id
        if isinstance(verdict, Accepted):
            topic = self._topics.raw if kind == EVENT else self._kind_topics[kind]
            key, value, reason = verdict.key, verdict.value, None
        else:
            reason = verdict.reason
            topic, key = self._topics.dlq, reason.encode()
            value = DeadLetter.build(
                msg.payload, reason, verdict.detail, msg.topic, received_ms, "bridge"
            ).encode()
        self._produce(
            topic, key, value, received_ms,
            functools.partial(
                self._delivered, token, received, kind, reason, msg.topic, ref
            ),
        )  # fmt: skip

    def _produce(
        self, topic: str, key: bytes, value: bytes, received_ms: int,
        callback: Callable[..., None],
    ) -> None:  # fmt: skip
        try:
            # Positional (topic, value, key, partition, on_delivery, callback, timestamp):
            # keyword parsing cost ~0.4 µs of the ~2.5 µs call; -1 = librdkafka's
            # partitioner picks by key. The record's timestamp is the receipt time, a
            # time the cloud vouches for: retention counts from min(occurred, received).
            self._producer.produce(topic, value, key, -1, callback, None, received_ms)
        except BufferError:
            # The local queue is sized far above max_inflight; if it is full anyway,
            # treat it like a failed send: no ack, drop the connection, redelivery.
            self._kafka_failure("producer queue full")
        except Exception as exc:  # noqa: BLE001 - any producer failure means redelivery
            err = exc.args[0] if exc.args else None
            if getattr(err, "fatal", lambda: False)():
                self._producer_fatal.set()
            self._kafka_failure(f"produce failed: {exc}")

    # -- Kafka delivery reports (loop thread: served by _serve_reports) ---------------
    def _delivered(
        self, token: Pending | None, received: float, kind: str, reason: str | None,
        topic: str, ref: int | str | None, err: Any, _msg: Any,
    ) -> None:  # fmt: skip
        if err is not None:
            if token is None or token.generation != self._acks.generation:
                return  # from before the last reconnect: the broker redelivers it
            self.metrics.produce_failures.inc()
            if err.fatal():
                self._producer_fatal.set()
            self._kafka_failure(f"Kafka send failed: {err}")
            return
        self._latencies.append(self._served_at - received)
        if ref is not None:
            confirmer = self._confirmer
            assert confirmer is not None  # a ref is only noted when confirming
            if isinstance(ref, int):
                confirmer.add(topic, ref)
            else:
                confirmer.add_ack(topic, ref)
        if reason is None:
            self._counts[kind] += 1
        else:
            self.metrics.dead_lettered.labels(reason).inc()
        if token is not None:
            self._acks.done(token)  # may release PUBACKs into self._ready

    def _on_kafka_error(self, err: Any) -> None:
        # librdkafka reports broker trouble here and retries by itself; only a fatal
        # error (e.g. the idempotent producer's state was lost) needs a new producer.
        if err.fatal():
            self._producer_fatal.set()
            self._kafka_failure(f"fatal Kafka producer error: {err}")
        else:
            log.warning("Kafka: %s", err)

    def _release(self, packet_id: int) -> None:
        # Called by OrderedAcks.done in the loop thread, in arrival order.
        self._ready.append(packet_id)

    def _serve_reports(self, producer: Any = None) -> None:
        """Serve the delivery reports librdkafka has ready (each runs ``_delivered``
        here, on the loop thread), then count them and write the released PUBACKs
        in one go."""
        self._served_at = self._clock()
        (producer or self._producer).poll(0)
        if self._received:
            self.metrics.received.inc(self._received)
            self._received = 0
        counts = self._counts
        if counts[EVENT]:
            self._produced_event.inc(counts[EVENT])
            counts[EVENT] = 0
        if counts[ACK]:
            self._produced_ack.inc(counts[ACK])
            counts[ACK] = 0
        if counts[STATUS]:
            self.metrics.produced.labels(STATUS).inc(counts[STATUS])
            counts[STATUS] = 0
        if self._latencies:
            self.metrics.produce_latency.observe_many(self._latencies)
            self._latencies = []
        mids, self._ready = self._ready, []
        link = self._link
        if mids and link is not None and link.connected:
            link.ack(mids)
            self.metrics.acked.inc(len(mids))
        confirmer = self._confirmer
        if confirmer is not None and confirmer.due() and link is not None and link.connected:
            messages = confirmer.take()
            if link.send(messages):
                self.metrics.confirmations.inc(len(messages))

    async def _serve_forever(self) -> None:
        while True:
            self._serve_reports()
            await asyncio.sleep(SERVE_BUSY_S if len(self._acks) else SERVE_IDLE_S)

    async def _flush(self, producer: Any, timeout_s: float) -> int:
        """Like ``producer.flush(timeout_s)``, but serving the reports on this thread
        (a blocking flush in a worker would run ``_delivered`` there); returns how
        many records are still unconfirmed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(producer) and loop.time() < deadline:
            self._serve_reports(producer)
            await asyncio.sleep(SERVE_BUSY_S)
        self._serve_reports(producer)
        return len(producer)

    def _kafka_failure(self, why: str) -> None:
        if not self._kafka_failed.is_set():
            log.error("%s; dropping the MQTT connection so the broker redelivers", why)
        self._kafka_failed.set()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._abort_link)

    def _abort_link(self) -> None:
        if self._link is not None:
            self._link.abort()

    # -- lifecycle -------------------------------------------------------------
    def _new_link(self) -> MqttLink:
        ctx = tls_context(str(self._s.ca_file)) if self._s.ca_file else None
        return MqttLink(
            self._s.mqtt_host or self._stack.host,
            self._s.mqtt_port or self._stack.mqtt_port,
            self._s.client_id,
            self._creds.username,
            self._creds.password,
            self._on_publish,
            ssl_context=ctx,
            keepalive_s=self._s.keepalive_s,
            session_expiry_s=self._s.session_expiry_s,
            receive_maximum=self._s.max_inflight,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; then acknowledge what Kafka confirmed and leave."""
        self._loop = asyncio.get_running_loop()
        server = asyncio.create_task(self._serve_forever(), name="kafka-reports")
        relay = asyncio.create_task(self._relay_commands(stop)) if self._s.relay_commands else None
        filters = self._s.filters()
        if self._s.subscription == "shared":
            log.warning(
                "shared subscription mode: Mosquitto 2.0.x loses in-flight shared-subscription"
                " messages when a member crashes or the broker restarts; prefer 'exclusive'"
                " instances with disjoint FACEGATE_BRIDGE_SCOPE (docs/bridge.md)"
            )
        backoff = 0.5
        opened_before = False
        try:
            while not stop.is_set():
                if self._kafka_failed.is_set():
                    await self._recover_kafka(stop)
                    continue
                link = self._new_link()
                # Current before open(): with a present session the broker sends queued
                # messages right after CONNACK, and their acks must go out on this link.
                self._link = link
                try:
                    present = await link.open(filters)
                except BrokerError as exc:
                    link.abort()
                    self._link = None
                    self._acks.reset()  # whatever arrived during open() is redelivered
                    self._ready = []
                    pause = 5.0 if isinstance(exc, ConnectRefused) else backoff
                    log.warning("%s; retrying in %.1fs", exc, pause)
                    await _sleep_or_stop(stop, pause)
                    backoff = min(backoff * 2, 5.0)
                    continue
                backoff = 0.5
                if opened_before and self._s.commands_replay_s:
                    self._replay_from_ms = int((self._clock() - self._s.commands_replay_s) * 1000)
                opened_before = True
                self.metrics.connected.set(1)
                self.metrics.reconnects.inc()
                log.info("MQTT connected as %s (session present: %s)", self._s.client_id, present)
                waiter = asyncio.create_task(stop.wait())
                closed = asyncio.create_task(link.wait_closed())
                await asyncio.wait({waiter, closed}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                closed.cancel()
                if stop.is_set():
                    await self._leave(link)
                self.metrics.connected.set(0)
                link.abort()
                self._link = None
                dropped = self._acks.reset()
                self._ready = []  # released for the dead connection; redelivered anyway
                if not stop.is_set():
                    log.warning("MQTT link down; %d unacknowledged will be redelivered", dropped)
        finally:
            if relay is not None:
                relay.cancel()
                await asyncio.gather(relay, return_exceptions=True)
            server.cancel()
            await asyncio.gather(server, return_exceptions=True)
            await self._flush(self._producer, 10)

    async def _leave(self, link: MqttLink) -> None:
        """Stop taking deliveries, let Kafka confirm what is in flight, ack it, disconnect."""
        link.pause()
        await self._flush(self._producer, 30)  # writes the released PUBACKs as it goes
        await link.close()

    async def _recover_kafka(self, stop: asyncio.Event) -> None:
        # Everything unacknowledged is back with the broker; wait for the producer's
        # queue to empty (sent or failed) before taking deliveries again.
        if self._producer_fatal.is_set():
            old = self._producer
            log.error("replacing the Kafka producer after a fatal error")
            old.purge()
            await self._flush(old, 1)
            self._producer = self._make_producer(self._on_kafka_error)
            self._producer_fatal.clear()
        remaining = await self._flush(self._producer, 5)
        if remaining == 0:
            self._kafka_failed.clear()
            log.info("Kafka producer queue drained; reconnecting MQTT")
        else:
            await _sleep_or_stop(stop, 1.0)

    # -- downlink ----------------------------------------------------------------
    async def _relay_commands(self, stop: asyncio.Event) -> None:
        """Kafka ``commands`` → MQTT site command topic, QoS 1; commit after PUBACK."""
        pool = ThreadPoolExecutor(1, thread_name_prefix="commands")
        loop = asyncio.get_running_loop()
        try:
            consumer = await loop.run_in_executor(pool, self._make_consumer)
        except Exception:  # noqa: BLE001 - the uplink must keep running
            log.exception("commands consumer could not start; downlink relay is off")
            return
        try:
            while not stop.is_set():
                if self._replay_from_ms is not None:
                    since, self._replay_from_ms = self._replay_from_ms, None
                    await loop.run_in_executor(pool, rewind_commands, consumer, since)
                msg = await loop.run_in_executor(pool, consumer.poll, 0.5)
                if msg is None:
                    continue
                if msg.error():
                    log.warning("commands consumer: %s", msg.error())
                    continue
                await self._relay_one(msg, stop)
                await loop.run_in_executor(
                    pool, functools.partial(consumer.commit, message=msg, asynchronous=False)
                )
        except asyncio.CancelledError:
            pass
        finally:
            await loop.run_in_executor(pool, consumer.close)
            pool.shutdown(wait=False)

    async def _relay_one(self, msg: Any, stop: asyncio.Event) -> None:
        raw: bytes = msg.value() or b""
        try:
            command = decode_command(raw)
        except WireError as exc:
            await self._dead_letter_command(raw, exc.reason, exc.detail, msg.topic())
            return
        topic = site_command_topic(command.tenant, command.site)
        while True:
            link = self._link
            if link is not None and link.connected:
                try:
                    code = await link.publish(topic, raw)
                    break
                except ConnectionLost:
                    pass
            if stop.is_set():
                raise asyncio.CancelledError  # not committed: relayed by the next run
            await asyncio.sleep(0.2)
        if code >= 0x80:
            await self._dead_letter_command(raw, "mqtt_refused", f"PUBACK {hex(code)}", topic)
            return
        self.metrics.commands_relayed.inc()

    async def _dead_letter_command(self, raw: bytes, reason: str, detail: str, src: str) -> None:
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        loop = asyncio.get_running_loop()

        def report(err: Any, _msg: Any) -> None:
            loop.call_soon_threadsafe(
                lambda: done.done() or done.set_result(err)  # type: ignore[func-returns-value]
            )

        letter = DeadLetter.build(raw, reason, detail, src, int(self._clock() * 1000), "downlink")
        while True:
            self._producer.produce(
                self._topics.dlq, value=letter.encode(), key=reason.encode(), on_delivery=report
            )
            if await done is None:
                self.metrics.dead_lettered.labels(reason).inc()
                return
            done = loop.create_future()
            await asyncio.sleep(1.0)


def rewind_commands(consumer: Any, since_ms: int) -> int:
    """Seek each assigned partition of the commands consumer back to its first record
    at or after ``since_ms``; returns how many partitions moved. A failure is logged:
    the relay goes on from where it was."""
    from confluent_kafka import KafkaException, TopicPartition

    try:
        parts = consumer.assignment()
        wanted = [TopicPartition(p.topic, p.partition, since_ms) for p in parts]
        found = consumer.offsets_for_times(wanted, timeout=10) if wanted else []
        moved = 0
        for tp in found:
            if tp.offset >= 0:
                consumer.seek(tp)
                moved += 1
    except KafkaException as exc:
        log.warning("commands not replayed after the reconnect: %s", exc)
        return 0
    if moved:
        log.info("relaying the commands since %d again (%d partition(s))", since_ms, moved)
    return moved


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
