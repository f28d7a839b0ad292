"""Drains the outbox to MQTT with QoS 1.

With ``confirm_delivery`` (the default) a PUBACK only marks an event sent; it
is removed when the bridge confirms it durable in Kafka on the device's
``confirms`` topic, and published again (with later rows, in order, at most
``resend_window`` per round, rounds backing off while nothing is confirmed) when
no confirmation came within ``confirm_timeout_s``: a Mosquitto crash between
its PUBACK and its next save loses nothing. Without it a PUBACK removes the
row. Command acknowledgements are kept the same way, until the bridge confirms
them by command id: a withdrawal's ack must not be lost with the broker.

Order is kept per device: rows are published in outbox order, and paho
resends unacknowledged ones, in order, after a reconnect. After a process
restart publishing starts again from the oldest row, so an event can arrive
twice but never not at all; the cloud drops duplicates by event id.

With ``on_command`` the same connection also carries the commands from the
cloud: it subscribes to the device's own and the site-wide command topics in
a persistent session (``clean_start=False`` + a session expiry), so commands
sent while the device was offline arrive when it reconnects. Commands are
acknowledged to the broker only after ``on_command`` returned (it queues the
CommandAck in the outbox), and queued events are published only after the
subscription is confirmed: the broker delivers a session's queued commands
before the SUBACK, so a withdrawal purges the subject's queued events before
any of them can leave.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.errors import ConfigError
from edge_agent.outbox import SqliteOutbox
from edge_agent.outbox.sqlite_outbox import ACKS, EVENTS
from edge_agent.uplink.confirmations import Confirmations
from edge_agent.uplink.settings import MqttSettings
from edge_agent.wire.confirms import confirm_topic
from edge_agent.wire.topics import (
    DeviceIdentity,
    ack_topic,
    command_topic,
    event_topic,
    site_command_topic,
)

log = logging.getLogger(__name__)


def _use_ca(client: mqtt.Client, ca_file: str) -> None:
    try:
        client.tls_set(ca_certs=ca_file, cert_reqs=ssl.CERT_REQUIRED)
    except (OSError, ssl.SSLError) as exc:  # SSLError is an OSError; named for the reader
        raise ConfigError(
            f"the broker's CA file {ca_file} cannot be loaded ({exc.strerror or exc}); "
            "copy the project CA again (facegate devices add writes it) and restart the agent"
        ) from exc


class OutboxPublisher:
    def __init__(
        self,
        outbox: SqliteOutbox,
        identity: DeviceIdentity,
        settings: MqttSettings,
        *,
        on_command: Callable[[bytes], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._outbox = outbox
        self._topic = event_topic(identity)
        self._topics = {EVENTS: event_topic(identity), ACKS: ack_topic(identity)}
        self._command_topics = [
            command_topic(identity), site_command_topic(identity.tenant, identity.site)
        ]
        self._on_command = on_command
        self._s = settings
        self._clock = clock
        self._confirm_topic = confirm_topic(identity)
        self.confirmations = (
            Confirmations(
                outbox, identity, settings.confirm_timeout_s, clock,
                cap_s=settings.resend_backoff_cap_s, jitter=settings.resend_jitter,
            )
            if settings.confirm_delivery else None
        )
        self._subscribes = self._on_command is not None or self.confirmations is not None
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.username,
            protocol=mqtt.MQTTv5,
            manual_ack=on_command is not None,
        )
        self._client.username_pw_set(settings.username, settings.password.get_secret_value())
        if settings.ca_file is not None:
            _use_ca(self._client, str(settings.ca_file))
        self._client.max_inflight_messages_set(settings.window)
        self._client.max_queued_messages_set(0)
        self._client.reconnect_delay_set(1, 10)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_connect_fail = self._on_connect_fail
        self._unreachable = False
        self._client.on_publish = self._on_publish
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._commands: queue.SimpleQueue[tuple[int, int, bytes]] = queue.SimpleQueue()
        self._subscribed = threading.Event()
        self.commands_received = 0
        self._inflight: dict[int, tuple[int, str]] = {}  # mid -> outbox row id, kind
        self._early: dict[int, tuple[bool, str]] = {}
        self._inflight_lock = threading.Lock()
        self._acked: queue.SimpleQueue[tuple[int, str, bool, str]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._connected = threading.Event()
        self._last_sent = 0
        self._high_sent = 0  # the newest row published since start: later ones are new
        self._resend_budget = 0
        self.published = 0
        self.refused = 0
        self.last_refusal: str | None = None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def ready(self) -> bool:
        """Connected, and (when taking commands or confirmations) subscribed: queued rows
        may be sent."""
        return self._connected.is_set() and (not self._subscribes or self._subscribed.is_set())

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        if rc.is_failure:
            log.error("MQTT connect refused: %s", rc)
            return
        if self._unreachable:
            self._unreachable = False
            log.info("MQTT broker %s:%d reachable again", self._s.host, self._s.port)
        self._connected.set()
        if self._subscribes:
            self._subscribed.clear()
            topics = [(t, 1) for t in self._command_topics] if self._on_command else []
            if self.confirmations is not None:
                # QoS 0: a lost confirmation costs one re-send, never an event.
                topics.append((self._confirm_topic, 0))
            client.subscribe(topics)
        self._wake.set()

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # Once per outage: paho retries every few seconds, the gate keeps working.
        if not self._unreachable:
            self._unreachable = True
            log.warning(
                "MQTT broker %s:%d unreachable; events stay in the outbox and are sent "
                "when it is back (retrying)", self._s.host, self._s.port,
            )

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        self._connected.clear()
        self._subscribed.clear()

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, rcs: Any, props: Any
    ) -> None:
        failed = [rc for rc in rcs if rc.is_failure]
        if failed:
            log.error("subscription refused: %s", failed)
        else:
            log.info("listening for commands and delivery confirmations")
        self._subscribed.set()
        self._wake.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self.confirmations is not None and msg.topic == self._confirm_topic:
            self.confirmations.receive(bytes(msg.payload))
        elif self._on_command is not None:
            self._commands.put((msg.mid, msg.qos, bytes(msg.payload)))
        self._wake.set()

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, rc: Any, props: Any
    ) -> None:
        # paho calls this holding its own lock, and can do so before publish()
        # has returned the mid to us: park such early acks until we know the row.
        with self._inflight_lock:
            row = self._inflight.pop(mid, None)
            if row is None:
                self._early[mid] = (not rc.is_failure, str(rc))
                return
        self._acked.put((row[0], row[1], not rc.is_failure, str(rc)))
        self._wake.set()

    def start(self) -> None:
        if not self._subscribes:
            self._client.connect_async(
                self._s.host, self._s.port, keepalive=self._s.keepalive_s
            )
        else:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self._s.session_expiry_s
            self._client.connect_async(
                self._s.host, self._s.port, keepalive=self._s.keepalive_s,
                clean_start=False, properties=props,
            )
        self._client.loop_start()

    def _handle_commands(self) -> None:
        assert self._on_command is not None
        while True:
            try:
                mid, qos, payload = self._commands.get_nowait()
            except queue.Empty:
                return
            self.commands_received += 1
            try:
                self._on_command(payload)
            except Exception:
                # Not acknowledged: the broker sends it again on the next connection.
                log.exception("command handling failed; it will be redelivered")
                continue
            if qos > 0:
                self._client.ack(mid, qos)

    def pump(self) -> int:
        """Handle commands, apply confirmations and acknowledgements, publish new rows;
        returns rows removed.

        ``ready`` is read before the commands are handled: the broker delivers a
        session's queued commands before the SUBACK that makes us ready, so every
        command queued for us while offline is carried out (and its subject's events
        purged) before the first row of the backlog leaves.
        """
        ready = self.ready
        if self._on_command is not None:
            self._handle_commands()
        removed = self.confirmations.apply() if self.confirmations is not None else 0
        removed += self._apply_pubacks()
        if ready:
            if self.confirmations is not None:
                cursor = self.confirmations.rewind(self._last_sent)
                if cursor is not None:
                    self._last_sent = cursor
                    self._resend_budget = self._s.resend_window
            self._publish_rows()
        return removed

    def _apply_pubacks(self) -> int:
        sent: list[int] = []
        gone: list[int] = []
        while True:
            try:
                row_id, _kind, ok, rc = self._acked.get_nowait()
            except queue.Empty:
                break
            if ok and self.confirmations is not None:
                sent.append(row_id)
            else:
                gone.append(row_id)
            if not ok:
                # The broker refused (e.g. not authorised): keeping the row would
                # block the queue forever. Counted and logged, never silent.
                self.refused += 1
                self.last_refusal = rc
                log.error("broker refused an event (%s); it is dropped from the outbox", rc)
        self._outbox.mark_sent(sent, int(self._clock() * 1000))
        self.published += len(sent) + len(gone)
        return self._outbox.remove(gone)

    def _publish_rows(self) -> None:
        with self._inflight_lock:
            room = self._s.window - len(self._inflight)
        if room <= 0:
            return
        for row in self._outbox.peek(self._last_sent, room):
            if row.id <= self._high_sent:
                if self._resend_budget <= 0:
                    # This round's window is out: the rest waits for a later round.
                    self._last_sent = self._high_sent
                    return
                self._resend_budget -= 1
            # Never hold our lock across publish(): paho's ack path holds
            # its lock while it calls on_publish, which takes ours.
            info = self._client.publish(self._topics[row.kind], row.payload, qos=1)
            with self._inflight_lock:
                early = self._early.pop(info.mid, None)
                if early is None:
                    self._inflight[info.mid] = (row.id, row.kind)
            if early is not None:
                self._acked.put((row.id, row.kind, early[0], early[1]))
            self._last_sent = row.id
            self._high_sent = max(self._high_sent, row.id)

    def publish_status(self, topic: str, payload: bytes) -> bool:
        """Send a device status at QoS 0 when connected (live state: never queued)."""
        if not self._connected.is_set():
            return False
        return self._client.publish(topic, payload, qos=0).rc == mqtt.MQTT_ERR_SUCCESS

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
