"""One bridge instance: MQTT (paho, manual acks, persistent session) → Kafka (acks=all).

A message is acknowledged to MQTT only after Kafka confirmed its record (or
its dead letter). If Kafka fails a send, the MQTT connection is dropped
without acking, and the broker redelivers everything unacknowledged when we
reconnect with the same persistent session: nothing is lost, duplicates are
dropped downstream by event id.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from kafka import KafkaProducer
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client import REGISTRY, CollectorRegistry

from edge_agent.wire.topics import EVENTS_FILTER
from stream_processor.bridge.acks import OrderedAcks, Pending
from stream_processor.bridge.metrics import BridgeMetrics
from stream_processor.bridge.settings import BridgeSettings
from stream_processor.bridge.validate import Accepted, check_message
from stream_processor.dead_letter import DeadLetter
from stream_processor.settings import StackSettings, Topics
from stream_processor.stack.accounts import Credentials

log = logging.getLogger(__name__)


def make_producer(bootstrap: str, settings: BridgeSettings) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=settings.client_id,
        acks="all",
        enable_idempotence=True,
        # kafka-python's idempotent producer requires one request in flight.
        max_in_flight_requests_per_connection=1,
        linger_ms=settings.linger_ms,
        batch_size=settings.batch_bytes,
        retries=2**31 - 1,
        delivery_timeout_ms=120_000,
        request_timeout_ms=30_000,
        reconnect_backoff_max_ms=2_000,
    )


class Bridge:
    def __init__(
        self,
        stack: StackSettings,
        settings: BridgeSettings,
        topics: Topics,
        credentials: Credentials,
        producer: KafkaProducer | None = None,
        registry: CollectorRegistry = REGISTRY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._stack = stack
        self._s = settings
        self._topics = topics
        self._clock = clock
        self.metrics = BridgeMetrics(registry)
        self._producer = producer or make_producer(stack.kafka_bootstrap, settings)
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        self._client.username_pw_set(credentials.username, credentials.password)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(1, 5)
        self._acks = OrderedAcks(self._release)
        self._kafka_failed = threading.Event()
        self._stop = threading.Event()

    # -- MQTT callbacks (paho's thread) -------------------------------------
    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        if rc.is_failure:
            log.error("MQTT connect refused: %s", rc)
            return
        self.metrics.connected.set(1)
        log.info("MQTT connected (session present: %s)", flags.session_present)
        client.subscribe(f"$share/{self._s.share_group}/{EVENTS_FILTER}", qos=1)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        self.metrics.connected.set(0)
        dropped = self._acks.reset()
        self.metrics.inflight.set(0)
        log.warning("MQTT disconnected (%s); %d unacked will be redelivered", rc, dropped)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        received = self._clock()
        self.metrics.received.inc()
        self.metrics.inflight.inc()
        token = self._acks.add(msg.mid)
        payload = bytes(msg.payload)
        verdict = check_message(msg.topic, payload, self._s.max_payload_bytes)
        if isinstance(verdict, Accepted):
            topic, key, value = self._topics.raw, verdict.key, verdict.value
            reason = None
        else:
            reason = verdict.reason
            topic, key = self._topics.dlq, reason.encode()
            value = DeadLetter.build(
                payload, reason, verdict.detail, msg.topic, int(received * 1000), "bridge"
            ).encode()
        try:
            future = self._producer.send(topic, key=key, value=value)
        except Exception as exc:  # noqa: BLE001 - any producer failure means redelivery
            self._on_send_failed(exc)
            return
        future.add_callback(self._on_sent, token, received, reason)
        future.add_errback(self._on_send_failed)

    # -- Kafka callbacks (the producer's I/O thread) ------------------------
    def _on_sent(self, token: Pending, received: float, reason: str | None, _meta: Any) -> None:
        self.metrics.produce_latency.observe(self._clock() - received)
        if reason is None:
            self.metrics.produced.inc()
        else:
            self.metrics.dead_lettered.labels(reason).inc()
        self._acks.done(token)

    def _on_send_failed(self, exc: BaseException) -> None:
        self.metrics.produce_failures.inc()
        log.error("Kafka send failed (%s); reconnecting MQTT for redelivery", exc)
        self._kafka_failed.set()

    def _release(self, mid: int) -> None:
        self._client.ack(mid, 1)
        self.metrics.acked.inc()
        self.metrics.inflight.dec()

    # -- lifecycle ---------------------------------------------------------
    def connect(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._s.session_expiry_s
        props.ReceiveMaximum = self._s.max_inflight
        # clean_start=False on every connect, the first one included: a restarted
        # bridge must find the messages that arrived while it was away.
        self._client.connect_async(
            self._stack.host,
            self._stack.mqtt_port,
            keepalive=30,
            clean_start=False,
            properties=props,
        )
        self._client.loop_start()

    def run(self, stop: threading.Event | None = None) -> None:
        """Run until ``stop`` is set (or ``self.stop()`` is called)."""
        stop = stop or self._stop
        self.connect()
        try:
            while not stop.wait(0.2) and not self._stop.is_set():
                if self._kafka_failed.is_set():
                    self._recover_from_kafka_failure()
        finally:
            self.close()

    def _recover_from_kafka_failure(self) -> None:
        # Drop the session's connection without acking; the broker redelivers.
        self._client.disconnect()
        self._client.loop_stop()
        self._producer.flush(timeout=30)
        self._kafka_failed.clear()
        time.sleep(1.0)
        self.connect()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        # Flush first so confirmed records get their MQTT acks out before we leave.
        try:
            self._producer.flush(timeout=30)
            time.sleep(0.2)
        finally:
            self._client.disconnect()
            self._client.loop_stop()
            self._producer.close(timeout=10)
