"""Drains the outbox to MQTT with QoS 1; a row is removed only on a successful PUBACK.

Order is kept per device: rows are published in outbox order, and paho
resends unacknowledged ones, in order, after a reconnect. After a process
restart publishing starts again from the oldest row, so an event can arrive
twice but never not at all; the cloud drops duplicates by event id.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.outbox import SqliteOutbox
from edge_agent.uplink.settings import MqttSettings
from edge_agent.wire.topics import DeviceIdentity, event_topic

log = logging.getLogger(__name__)


class OutboxPublisher:
    def __init__(
        self, outbox: SqliteOutbox, identity: DeviceIdentity, settings: MqttSettings
    ) -> None:
        self._outbox = outbox
        self._topic = event_topic(identity)
        self._s = settings
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.username,
            protocol=mqtt.MQTTv5,
        )
        self._client.username_pw_set(settings.username, settings.password.get_secret_value())
        if settings.ca_file is not None:
            self._client.tls_set(ca_certs=str(settings.ca_file), cert_reqs=ssl.CERT_REQUIRED)
        self._client.max_inflight_messages_set(settings.window)
        self._client.max_queued_messages_set(0)
        self._client.reconnect_delay_set(1, 10)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._inflight: dict[int, int] = {}  # mid -> outbox row id
        self._early: dict[int, tuple[bool, str]] = {}
        self._inflight_lock = threading.Lock()
        self._acked: queue.SimpleQueue[tuple[int, bool, str]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._connected = threading.Event()
        self._last_sent = 0
        self.published = 0
        self.refused = 0
        self.last_refusal: str | None = None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        if rc.is_failure:
            log.error("MQTT connect refused: %s", rc)
            return
        self._connected.set()
        self._wake.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        self._connected.clear()

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, rc: Any, props: Any
    ) -> None:
        # paho calls this holding its own lock, and can do so before publish()
        # has returned the mid to us: park such early acks until we know the row.
        with self._inflight_lock:
            row_id = self._inflight.pop(mid, None)
            if row_id is None:
                self._early[mid] = (not rc.is_failure, str(rc))
                return
        self._acked.put((row_id, not rc.is_failure, str(rc)))
        self._wake.set()

    def start(self) -> None:
        self._client.connect_async(self._s.host, self._s.port, keepalive=self._s.keepalive_s)
        self._client.loop_start()

    def pump(self) -> int:
        """Apply acknowledgements and publish new rows; returns rows removed."""
        done: list[int] = []
        while True:
            try:
                row_id, ok, rc = self._acked.get_nowait()
            except queue.Empty:
                break
            done.append(row_id)
            if not ok:
                # The broker refused (e.g. not authorised): keeping the row would
                # block the queue forever. Counted and logged, never silent.
                self.refused += 1
                self.last_refusal = rc
                log.error("broker refused an event (%s); it is dropped from the outbox", rc)
        removed = self._outbox.remove(done)
        self.published += len(done)
        if self._connected.is_set():
            with self._inflight_lock:
                room = self._s.window - len(self._inflight)
            if room > 0:
                for row in self._outbox.peek(self._last_sent, room):
                    # Never hold our lock across publish(): paho's ack path holds
                    # its lock while it calls on_publish, which takes ours.
                    info = self._client.publish(self._topic, row.payload, qos=1)
                    with self._inflight_lock:
                        early = self._early.pop(info.mid, None)
                        if early is None:
                            self._inflight[info.mid] = row.id
                    if early is not None:
                        self._acked.put((row.id, early[0], early[1]))
                    self._last_sent = row.id
        return removed

    def run(self, stop: threading.Event, idle_s: float = 0.05) -> None:
        self.start()
        try:
            while not stop.is_set():
                self.pump()
                self._wake.wait(idle_s)
                self._wake.clear()
        finally:
            self.close()

    def drain(self, timeout_s: float) -> bool:
        """Pump until the outbox is empty or the timeout passes (for tools and tests)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.pump()
            if self._outbox.depth() == 0:
                return True
            self._wake.wait(0.05)
            self._wake.clear()
        return False

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
