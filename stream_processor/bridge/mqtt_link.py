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
from collections.abc import Callable
from typing import Any

from stream_processor.bridge import mqtt_codec as codec
from stream_processor.errors import BrokerError

log = logging.getLogger(__name__)

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
    """The broker refused our CONNECT (credentials, authorisation)."""

    retriable = False


class ConnectionLost(BrokerError):
    """The connection closed or broke."""


class MqttLink:
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
    ) -> None:
        self._host, self._port, self._ssl = host, port, ssl_context
        self._client_id, self._username, self._password = client_id, username, password
        self._keepalive_s = keepalive_s
        self._session_expiry_s = session_expiry_s
        self._receive_maximum = receive_maximum
        self._on_publish = on_publish
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._connack: asyncio.Future[tuple[bool, int]] | None = None
        self._pending: dict[int, asyncio.Future[int]] = {}
        self._suback: dict[int, asyncio.Future[list[int]]] = {}
        self._next_id = 0
        self._closed = asyncio.Event()

    # -- connect -------------------------------------------------------------
    async def open(self, filters: list[str], timeout_s: float = 10.0) -> bool:
        """Connect (clean_start=False), subscribe ``filters`` at QoS 1; True if the
        broker still had our session."""
        loop = asyncio.get_running_loop()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self._host, self._port, ssl=self._ssl, limit=1 << 20),
                timeout_s,
            )
        except (OSError, TimeoutError) as exc:
            raise ConnectionLost(f"cannot reach MQTT {self._host}:{self._port}: {exc}") from exc
        self._reader, self._writer = reader, writer
        self._closed.clear()
        self._connack = loop.create_future()
        writer.write(
            codec.connect(
                self._client_id, self._username, self._password, self._keepalive_s,
                self._session_expiry_s, self._receive_maximum, clean_start=False,
            )
        )  # fmt: skip
        self._read_task = asyncio.create_task(self._read_loop(), name="mqtt-read")
        try:
            present, reason = await asyncio.wait_for(asyncio.shield(self._connack), timeout_s)
        except TimeoutError:
            self.abort()
            raise ConnectionLost("no CONNACK in time") from None
        if reason >= 0x80:
            self.abort()
            raise ConnectRefused(
                f"MQTT connect refused: {CONNACK_REASONS.get(reason, hex(reason))}"
            )
        # Subscribing again is harmless with a present session, and repairs one
        # whose subscription was lost.
        sid = self._new_id()
        fut: asyncio.Future[list[int]] = loop.create_future()
        self._suback[sid] = fut
        writer.write(codec.subscribe(sid, filters, qos=1))
        try:
            codes = await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            self.abort()
            raise ConnectionLost("no SUBACK in time") from None
        if any(c >= 0x80 for c in codes):
            self.abort()
            raise ConnectRefused(f"subscription refused: {[hex(c) for c in codes]}")
        self._ping_task = asyncio.create_task(self._ping_loop(), name="mqtt-ping")
        return present

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
        parser = codec.PacketReader()
        on_publish = self._on_publish
        try:
            while True:
                data = await self._reader.read(1 << 18)
                if not data:
                    raise ConnectionLost("broker closed the connection")
                for packet in parser.feed(data):
                    if isinstance(packet, codec.Publish):
                        on_publish(packet)
                    else:
                        self._control(packet.type, packet.body)
        except (OSError, codec.ProtocolError, ConnectionLost) as exc:
            log.warning("MQTT connection lost: %s", exc)
        except asyncio.CancelledError:
            pass
        finally:
            self._fail_pending()
            if self._writer is not None:
                self._writer.close()
            self._closed.set()

    def _control(self, ptype: int, body: bytes) -> None:
        if ptype == codec.PUBACK:
            pid, codes = codec.parse_ack(body)
            fut = self._pending.pop(pid, None)
            if fut is not None and not fut.done():
                fut.set_result(codes[0])
        elif ptype == codec.CONNACK:
            if self._connack is not None and not self._connack.done():
                self._connack.set_result(codec.parse_connack(body))
        elif ptype == codec.SUBACK:
            pid, codes = codec.parse_suback(body)
            sub = self._suback.pop(pid, None)
            if sub is not None and not sub.done():
                sub.set_result(codes)
        elif ptype == codec.DISCONNECT:
            raise ConnectionLost(f"broker sent DISCONNECT {hex(codec.parse_disconnect(body))}")
        elif ptype == codec.PINGRESP:
            pass
        else:
            raise codec.ProtocolError(f"unexpected packet type {ptype}")

    async def _ping_loop(self) -> None:
        while not self._closed.is_set() and self._writer is not None:
            await asyncio.sleep(self._keepalive_s / 2)
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

    async def publish(self, topic: str, payload: bytes, timeout_s: float = 30.0) -> int:
        """Publish at QoS 1 and wait for the broker's PUBACK; returns its reason code."""
        if not self.connected or self._writer is None:
            raise ConnectionLost("not connected")
        pid = self._new_id()
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending[pid] = fut
        self._writer.write(codec.publish(topic, payload, qos=1, packet_id=pid))
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
        for task in (getattr(self, "_ping_task", None), getattr(self, "_read_task", None)):
            if task is not None:
                task.cancel()
        if self._writer is not None:
            transport = self._writer.transport
            transport.abort()
        self._closed.set()

    async def close(self) -> None:
        """Polite DISCONNECT (the session stays, with its expiry) and close."""
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(codec.disconnect(0))
            try:
                await asyncio.wait_for(self._writer.drain(), 2)
            except (OSError, TimeoutError):
                pass
        self.abort()
