"""One asyncio connection to the broker, as the bridge: take QoS 1 deliveries,
acknowledge them when told to (never on its own), publish QoS 1 downlink.

Why not paho: its callback thread takes ~8k messages/s on a 2-core machine
(see docs/benchmarks.md, "Bridge"); this link parses whole socket reads at
once and writes many PUBACKs in one syscall. It speaks only the MQTT v5
subset in ``mqtt_codec``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from stream_processor.bridge import mqtt_codec as codec
from stream_processor.bridge import mqtt_props
from stream_processor.errors import BrokerError, ConfigError

log = logging.getLogger(__name__)

_T = TypeVar("_T")
#: The largest packet the remaining-length encoding allows (spec 3.2.2.3.6).
_PROTOCOL_MAX_PACKET = 1 + 4 + 268_435_455

CONNACK_REASONS = {
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
}


class ConnectRefused(BrokerError):
    """The broker refused our CONNECT or SUBSCRIBE (credentials, authorisation);
    ``reason_codes`` are the broker's."""

    retriable = False

    def __init__(self, message: str, reason_codes: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.reason_codes = reason_codes


class ConnectionLost(BrokerError):
    """The connection closed or broke."""


class MqttLink:
    """One connection; to reconnect, ``open`` a new instance (same client id).

    ``keepalive_s`` (30; the bridge's FACEGATE_BRIDGE_KEEPALIVE_S): a PINGREQ every
    half of it, and a broker silent for longer closes the link; the broker's
    Server Keep Alive replaces it. ``receive_maximum`` (2000; the bridge's
    FACEGATE_BRIDGE_MAX_INFLIGHT): most unacknowledged deliveries handed to
    ``on_publish`` at once. ``session_expiry_s`` (7 days): how long the broker
    keeps the session while we are away. ``maximum_packet_size`` (16 MiB): the
    largest packet we take, announced in CONNECT; a larger one closes the link
    with DISCONNECT 0x95.
    """

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        username: str,
        password: str,
        on_publish: Callable[[codec.Publish], None],
        ssl_context: ssl.SSLContext | None = None,
        keepalive_s: int = 30,
        session_expiry_s: int = 7 * 24 * 3600,
        receive_maximum: int = 2000,
        maximum_packet_size: int = codec.MAX_PACKET,
    ) -> None:
        if not (0 <= keepalive_s <= 0xFFFF and 1 <= receive_maximum <= 0xFFFF):
            raise ConfigError(f"MQTT keep-alive {keepalive_s} s or Receive Maximum"
                              f" {receive_maximum} outside what MQTT can say")  # fmt: skip
        self._host, self._port, self._ssl = host, port, ssl_context
        self._client_id, self._username, self._password = client_id, username, password
        self._keepalive_s = keepalive_s
        self._session_expiry_s = session_expiry_s
        self._receive_maximum = receive_maximum
        self._parser = codec.PacketReader(maximum_packet_size)  # a bad size fails here
        self._maximum_packet_size = maximum_packet_size
        # Until CONNACK says otherwise (spec 3.2.2.3): no size limit, 65,535 in flight.
        self._server_max_packet = _PROTOCOL_MAX_PACKET
        self._send_slots = asyncio.Semaphore(65535)
        self._last_rx = 0.0
        #: Why the connection closed; None while open or after ``close``.
        self.error: BaseException | None = None
        self._on_publish = on_publish
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._connack: asyncio.Future[codec.ConnAck] | None = None
        self._pending: dict[int, asyncio.Future[int]] = {}
        self._suback: dict[int, asyncio.Future[tuple[int, ...]]] = {}
        self._next_id = 0
        self._closed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._leaving = False
        # Deliveries past our Receive Maximum, held until acks make room (see _dispatch).
        self._unacked = 0
        self._held: deque[codec.Publish] = deque()
        self._room = asyncio.Event()
        self._room.set()
        #: Deliveries the broker sent beyond our Receive Maximum (held back, not lost).
        self.held_back = 0

    @property
    def keepalive_s(self) -> int:
        """The keep-alive in force: ours, or the broker's Server Keep Alive."""
        return self._keepalive_s

    # -- connect -------------------------------------------------------------
    async def open(self, filters: list[str], timeout_s: float = 10.0) -> bool:
        """Connect (clean_start=False), subscribe ``filters`` at QoS 1; True if the
        broker still had our session."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self._host, self._port, ssl=self._ssl, limit=1 << 20),
                timeout_s,
            )
        except (OSError, TimeoutError) as exc:
            raise ConnectionLost(f"cannot reach MQTT {self._host}:{self._port}: {exc}") from exc
        self._reader, self._writer = reader, writer
        self._closed.clear()
        self._connack = asyncio.get_running_loop().create_future()
        writer.write(
            codec.connect(
                self._client_id, self._username, self._password, self._keepalive_s,
                self._session_expiry_s, self._receive_maximum, clean_start=False,
                maximum_packet_size=self._maximum_packet_size,
            )
        )  # fmt: skip
        self._last_rx = asyncio.get_running_loop().time()
        self._tasks.append(asyncio.create_task(self._read_loop(), name="mqtt-read"))
        connack = await self._await(self._connack, timeout_s, "CONNACK")
        if connack.reason >= 0x80:
            self.abort()
            reason = CONNACK_REASONS.get(connack.reason, hex(connack.reason))
            raise ConnectRefused(f"MQTT connect refused: {reason}", (connack.reason,))
        self._accept(connack.properties)
        # Subscribing again is harmless with a present session, and repairs one
        # whose subscription was lost.
        sid = self._new_id()
        self._suback[sid] = fut = asyncio.get_running_loop().create_future()
        writer.write(codec.subscribe(sid, filters, qos=1))
        codes = await self._await(fut, timeout_s, "SUBACK")
        if any(c >= 0x80 for c in codes):
            self.abort()
            raise ConnectRefused(f"subscription refused: {[hex(c) for c in codes]}", codes)
        if self._keepalive_s:
            self._tasks.append(asyncio.create_task(self._ping_loop(), name="mqtt-ping"))
        return connack.session_present

    async def _await(self, fut: asyncio.Future[_T], timeout_s: float, what: str) -> _T:
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout_s)
        except TimeoutError:
            self.abort()
            raise ConnectionLost(f"no {what} in time") from None

    def _accept(self, props: Mapping[int, Any]) -> None:
        """Take on what the broker's CONNACK imposes (spec 3.2.2.3)."""
        self._keepalive_s = props.get(mqtt_props.SERVER_KEEP_ALIVE, self._keepalive_s)
        self._server_max_packet = props.get(mqtt_props.MAXIMUM_PACKET_SIZE, _PROTOCOL_MAX_PACKET)
        self._send_slots = asyncio.Semaphore(props.get(mqtt_props.RECEIVE_MAXIMUM, 65535))

    def _new_id(self) -> int:
        for _ in range(65535):
            self._next_id = self._next_id % 65535 + 1
            if self._next_id not in self._pending and self._next_id not in self._suback:
                return self._next_id
        raise BrokerError("no free MQTT packet id")

    # -- running -------------------------------------------------------------
    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def _read_loop(self) -> None:
        assert self._reader is not None
        read, feed, room = self._reader.read, self._parser.feed, self._room
        clock = asyncio.get_running_loop().time
        try:
            while True:
                if not room.is_set():  # not reading: TCP pushes back on the broker
                    await room.wait()
                    self._last_rx = clock()
                data = await read(1 << 18)
                if not data:
                    raise ConnectionLost("broker closed the connection")
                self._last_rx = clock()
                self._dispatch(feed(data))
        except codec.ProtocolError as exc:
            # Spec 4.13: tell the peer why, then close.
            log.warning("MQTT protocol error from the broker: %s", exc)
            self.error = exc
            if self._writer is not None and not self._writer.is_closing():
                self._writer.write(codec.disconnect(exc.reason_code))
        except (OSError, ConnectionLost) as exc:
            if not self._leaving:  # after our DISCONNECT the broker closes: expected
                log.warning("MQTT connection lost: %s", exc)
                self.error = exc
        except asyncio.CancelledError:
            pass
        finally:
            self._fail_pending()
            if self._writer is not None:
                self._writer.close()
            self._closed.set()

    def _dispatch(self, packets: list[codec.Publish | codec.Packet]) -> None:
        """Hand deliveries on, never more than our Receive Maximum unacknowledged.

        The broker should not send more (spec 3.3.4), but Mosquitto before 2.0.13
        (Debian bookworm has 2.0.11) refills a whole window on every PUBACK; the
        excess waits here, in order, and the socket is not read until it is gone.
        """
        held, on_publish, publish_type = self._held, self._on_publish, codec.Publish
        room = self._receive_maximum - self._unacked  # QoS 1 deliveries we may hand on
        taken = 0
        for packet in packets:
            if isinstance(packet, publish_type):
                if packet.qos:
                    if held or taken >= room:
                        held.append(packet)
                        continue
                    taken += 1
                elif held:
                    held.append(packet)
                    continue
                on_publish(packet)
            else:
                self._control(packet.type, packet.body)
        self._unacked += taken
        if held and self._room.is_set():
            self._room.clear()
            self.held_back += len(held)
            if self.held_back == len(held):
                log.info(
                    "broker sent more than our Receive Maximum (%d) unacknowledged;"
                    " holding the excess until acknowledgements make room", self._receive_maximum,
                )  # fmt: skip

    def _release_held(self) -> None:
        held = self._held
        if self._closed.is_set():
            held.clear()  # unacknowledged: the broker sends them again
            return
        while held and not (held[0].qos and self._unacked >= self._receive_maximum):
            packet = held.popleft()
            self._unacked += packet.qos
            self._on_publish(packet)
        if not held:
            self._room.set()

    def _control(self, ptype: int, body: bytes) -> None:
        if ptype == codec.PUBACK:
            ack = codec.parse_puback(body)
            fut = self._pending.pop(ack.packet_id, None)
            if fut is not None and not fut.done():
                fut.set_result(ack.reasons[0])
        elif ptype == codec.PINGRESP:
            codec.parse_pingresp(body)
        elif ptype == codec.CONNACK:
            if self._connack is None or self._connack.done():
                raise codec.ProtocolError("a second CONNACK", codec.PROTOCOL_ERROR)
            self._connack.set_result(codec.parse_connack(body))
        elif ptype == codec.SUBACK:
            sub = codec.parse_suback(body)
            waiter = self._suback.pop(sub.packet_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(sub.reasons)
        elif ptype == codec.DISCONNECT:
            reason = codec.parse_disconnect(body).reason
            raise ConnectionLost(f"broker sent DISCONNECT {hex(reason)}")
        else:
            raise codec.ProtocolError(f"unexpected packet type {ptype}", codec.PROTOCOL_ERROR)

    async def _ping_loop(self) -> None:
        """PINGREQ every half keep-alive. A broker silent for longer than the
        keep-alive (so a PINGREQ went unanswered) is taken as gone, and the link
        closes: a half-open TCP connection would otherwise look alive for hours."""
        loop = asyncio.get_running_loop()
        while self.connected and self._writer is not None:
            await asyncio.sleep(self._keepalive_s / 2)
            silent = loop.time() - self._last_rx
            if silent > self._keepalive_s and self._room.is_set():  # else: we stopped reading
                self.error = ConnectionLost(
                    f"broker silent for {silent:.1f}s (keep-alive {self._keepalive_s}s)"
                )
                log.warning("MQTT connection lost: %s", self.error)
                self.abort()
                return
            if not self._writer.is_closing():
                self._writer.write(codec.PINGREQ_PACKET)

    def _fail_pending(self) -> None:
        futures: list[asyncio.Future[Any]] = [*self._pending.values(), *self._suback.values()]
        for fut in futures:
            if not fut.done():
                fut.set_exception(ConnectionLost("connection closed"))
        self._pending.clear()
        self._suback.clear()
        if self._connack is not None and not self._connack.done():
            self._connack.set_exception(ConnectionLost("connection closed before CONNACK"))

    # -- output --------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return (
            self._writer is not None and not self._writer.is_closing() and not self._closed.is_set()
        )

    def ack(self, packet_ids: list[int]) -> None:
        """Acknowledge deliveries (one write for all of them)."""
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(b"".join(map(codec.puback, packet_ids)))
            self._unacked = max(0, self._unacked - len(packet_ids))
            if self._held:  # not from inside the caller's own loop
                asyncio.get_running_loop().call_soon(self._release_held)

    def send(self, messages: list[tuple[str, bytes]]) -> bool:
        """Publish at QoS 0, one write for all (fire and forget); False when not
        connected. A packet over the broker's Maximum Packet Size is left out."""
        if not self.connected or self._writer is None:
            return False
        packets = (codec.publish(topic, payload, qos=0) for topic, payload in messages)
        self._writer.write(b"".join(p for p in packets if len(p) <= self._server_max_packet))
        return True

    async def publish(self, topic: str, payload: bytes, timeout_s: float = 30.0) -> int:
        """Publish at QoS 1 and wait for the broker's PUBACK; returns its reason code.

        A packet over the broker's Maximum Packet Size is not sent (the broker
        would disconnect us): 0x95, packet too large. At most the broker's
        Receive Maximum are in flight at once.
        """
        if not self.connected or self._writer is None:
            raise ConnectionLost("not connected")
        async with self._send_slots:
            pid = self._new_id()
            packet = codec.publish(topic, payload, qos=1, packet_id=pid)
            if len(packet) > self._server_max_packet:
                return codec.PACKET_TOO_LARGE
            fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self._pending[pid] = fut
            self._writer.write(packet)
            try:
                return await asyncio.wait_for(fut, timeout_s)
            except TimeoutError:
                self._pending.pop(pid, None)
                raise ConnectionLost("no PUBACK in time") from None

    async def drain(self) -> None:
        if self._writer is not None and not self._writer.is_closing():
            try:
                await self._writer.drain()
            except OSError as exc:
                raise ConnectionLost(str(exc)) from exc

    def pause(self) -> None:
        """Stop reading: the broker keeps what we have not taken yet."""
        if self._writer is not None and not self._writer.is_closing():
            transport = self._writer.transport
            if isinstance(transport, asyncio.ReadTransport):
                transport.pause_reading()

    def abort(self) -> None:
        """Drop the connection at once, without DISCONNECT: unacked messages stay
        with the broker and come back on the next connect."""
        for task in self._tasks:
            task.cancel()
        if self._writer is not None:
            self._writer.transport.abort()
        self._closed.set()

    async def close(self) -> None:
        """Polite DISCONNECT (the session stays, with its expiry) and close."""
        self._leaving = True
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(codec.disconnect(0))
            try:
                await asyncio.wait_for(self._writer.drain(), 2)
            except (OSError, TimeoutError):
                pass
        self.abort()
