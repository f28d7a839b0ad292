"""One simulated gate's MQTT connection and its unconfirmed events.

Edge semantics, without the outbox's disk: each event keeps its bytes until the
bridge's delivery confirmation covers its seq (``edge_agent.wire.confirms``). On a
new connection every unconfirmed event is published again in seq order; when the
oldest stays unconfirmed for ``confirm_timeout_s``, those the cloud has passed, or
all of them when it confirmed nothing for as long (``check_timeout``), at most
``resend_window`` per round, rounds backing off like the gate's
(``edge_agent.uplink.resend``). The cloud drops the duplicates by event id. Without
confirmations a PUBACK ends an event.
"""

from __future__ import annotations

import itertools
import logging
import random
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.errors import WireError
from edge_agent.simulate import mqtt_wire as w
from edge_agent.uplink.resend import (
    DEFAULT_CAP_S,
    DEFAULT_JITTER,
    DEFAULT_WINDOW,
    resend_delay_s,
    rounds_after,
)
from edge_agent.wire.confirms import confirm_topic, confirmation_for
from edge_agent.wire.topics import DeviceIdentity, event_topic

log = logging.getLogger(__name__)

#: Longest wait between reconnect attempts, seconds.
MAX_RECONNECT_S = 5.0
#: How long one reconnect attempt may block the worker's loop, seconds.
RECONNECT_TIMEOUT_S = 1.0
_WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom one device connects (from its ``devices add`` file)."""

    identity: DeviceIdentity
    host: str
    port: int
    username: str
    password: str
    ca_file: Path | None = None


@dataclass
class DeviceCounters:
    made: int = 0
    stored: int = 0
    acked: int = 0
    publishes: int = 0
    refused: int = 0
    confirmed: int = 0
    resends: int = 0
    reconnects: int = 0
    commands: int = 0
    #: Made but not confirmed (PUBACKed, without confirmations) when the run ended.
    unconfirmed: int = 0
    last_refusal: str = ""
    by_kind: dict[str, int] = field(default_factory=dict)


class SimDevice:
    """Not thread-safe: one worker loop drives it."""

    def __init__(
        self, endpoint: Endpoint, *, confirms: bool, confirm_timeout_s: float,
        keepalive_s: int, session_expiry_s: int, connect_timeout_s: float,
        clock: Callable[[], float] = time.monotonic, resend_cap_s: float = DEFAULT_CAP_S,
        resend_jitter: float = DEFAULT_JITTER, resend_window: int = DEFAULT_WINDOW,
        draw: Callable[[], float] = random.random,
    ) -> None:  # fmt: skip
        self.endpoint = endpoint
        self.identity = endpoint.identity
        self._topic = w.publish_parts(event_topic(endpoint.identity))
        self._confirm_topic = confirm_topic(endpoint.identity)
        self._confirms = confirms
        self._timeout = confirm_timeout_s
        self._cap = resend_cap_s
        self._jitter = resend_jitter
        self._window = resend_window
        self._draw = draw
        self._keepalive = keepalive_s
        self._expiry = session_expiry_s
        self._connect_timeout = connect_timeout_s
        self._clock = clock
        #: seq -> [payload, sent_at (0 = not yet), PUBACKed]; insertion = seq order.
        self.pending: dict[int, list[object]] = {}
        self._tosend: deque[int] = deque()
        self._inflight: dict[int, int] = {}
        self._next_pid = 0
        self._receive_max = 1
        self._out = bytearray()
        self._in = bytearray()
        self.sock: socket.socket | None = None
        self._retry_at = 0.0
        self._retry_wait = 0.2
        self._rewound_at = 0.0
        self._rounds = 0
        self._wait = confirm_timeout_s
        self._confirmed_at = 0.0
        self._max_confirmed = -1
        self._last_io = 0.0
        self.c = DeviceCounters()

    # -- connection -------------------------------------------------------
    def connect(self, timeout_s: float | None = None) -> None:
        """Open the session (blocking, up to ``timeout_s``, default ``connect_timeout_s``);
        raises OSError or ConnectionError. Every unconfirmed event is queued to be
        published again."""
        e = self.endpoint
        # Whatever was framed for the old connection is framed again from ``pending``.
        self._out.clear()
        self._in.clear()
        sock = socket.create_connection(
            (e.host, e.port), timeout=timeout_s or self._connect_timeout
        )
        try:
            if e.ca_file is not None:
                ctx = ssl.create_default_context(cafile=str(e.ca_file))
                sock = ctx.wrap_socket(sock, server_hostname=e.host)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(w.connect_packet(e.username, e.username, e.password,
                                          self._keepalive, self._expiry))  # fmt: skip
            reason, self._receive_max = w.connack(self._await(sock, w.CONNACK).body)
            if reason >= 0x80:
                raise ConnectionRefusedError(f"the broker refused the CONNECT (reason {reason:#x})")
            if self._confirms:
                sock.sendall(w.subscribe_packet(1, self._confirm_topic, 0))
                self._await(sock, w.SUBACK)
        except BaseException:
            sock.close()
            raise
        sock.setblocking(False)
        self.sock = sock
        self._inflight.clear()
        self._tosend = deque(self.pending)
        self._retry_wait = 0.2
        self._last_io = time.monotonic()

    def _await(self, sock: socket.socket, kind: int) -> w.Packet:
        while True:
            for packet in w.split_packets(self._in):
                if packet.kind == kind:
                    return packet
                self._handle(packet, sock)
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("the broker closed the connection during the handshake")
            self._in += data

    def drop(self, why: str, now: float) -> None:
        """Close after an error; reconnect later with back-off."""
        if self.sock is not None:
            log.warning("%s: connection lost (%s); reconnecting", self.identity.username, why)
            self.sock.close()
            self.sock = None
        self._in.clear()
        self._retry_at = now + self._retry_wait
        self._retry_wait = min(self._retry_wait * 2, MAX_RECONNECT_S)

    def maybe_reconnect(self, now: float) -> None:
        if self.sock is not None or now < self._retry_at:
            return
        try:
            # Short: a broker that does not answer must not stall the loop's other devices.
            self.connect(min(self._connect_timeout, RECONNECT_TIMEOUT_S))
            self.c.reconnects += 1
        except (OSError, ConnectionError, w.MqttProtocolError) as exc:
            self.drop(str(exc), now)

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.setblocking(True)
                self.sock.sendall(w.DISCONNECT_PACKET)
            except OSError:
                pass
            self.sock.close()
            self.sock = None

    # -- events -----------------------------------------------------------
    def add(self, seq: int, payload: bytes, kind: str, stored: bool) -> None:
        self.pending[seq] = [payload, 0.0, False]
        self._tosend.append(seq)
        c = self.c
        c.made += 1
        c.stored += stored
        c.by_kind[kind] = c.by_kind.get(kind, 0) + 1

    def fill(self, now: float) -> None:
        """Frame as many queued events as the broker's Receive Maximum allows."""
        if self.sock is None:
            return
        room = self._receive_max - len(self._inflight)
        tosend, pending, inflight = self._tosend, self.pending, self._inflight
        parts = []
        while room > 0 and tosend:
            seq = tosend.popleft()
            entry = pending.get(seq)
            if entry is None:
                continue  # confirmed while it waited to be sent again
            pid = self._next_pid = self._next_pid % 65535 + 1
            inflight[pid] = seq
            entry[1] = now
            parts.append(w.publish_packet(self._topic, pid, entry[0]))  # type: ignore[arg-type]
            room -= 1
        if parts:
            self.c.publishes += len(parts)
            self._out += b"".join(parts)

    def flush(self, now: float) -> None:
        if self.sock is None:
            return
        if not self._out and now - self._last_io > self._keepalive / 2:
            self._out += w.PINGREQ_PACKET
        if not self._out:
            return
        try:
            sent = self.sock.send(self._out)
        except _WOULD_BLOCK:
            return
        except OSError as exc:
            self.drop(str(exc), now)
            return
        del self._out[:sent]
        self._last_io = now

    def read(self, now: float) -> None:
        sock = self.sock
        if sock is None:
            return
        try:
            while True:
                data = sock.recv(262144)
                if not data:
                    self.drop("closed by the broker", now)
                    return
                self._in += data
                if len(data) < 262144 and not isinstance(sock, ssl.SSLSocket):
                    break
        except _WOULD_BLOCK:
            pass
        except OSError as exc:
            self.drop(str(exc), now)
            return
        try:
            while self._in:
                self._pubacks(w.take_pubacks(self._in))
                packets = w.split_packets(self._in, limit=1)
                if not packets:
                    break
                self._handle(packets[0], sock)
        except (w.MqttProtocolError, IndexError, ValueError, ConnectionError) as exc:
            self.drop(str(exc), now)

    def _pubacks(self, ids: list[int]) -> None:
        """Successful PUBACKs: the hot path, one per event."""
        inflight, pending, confirms = self._inflight, self.pending, self._confirms
        acked = 0
        for pid in ids:
            seq = inflight.pop(pid, None)
            entry = None if seq is None else pending.get(seq)
            if entry is None:
                continue
            if not entry[2]:
                entry[2] = True
                acked += 1
            if not confirms:
                del pending[seq]  # type: ignore[arg-type]
        self.c.acked += acked

    def _handle(self, packet: w.Packet, sock: socket.socket) -> None:
        if packet.kind == w.PUBACK:
            pid, reason = w.puback(packet.body)
            acked = self._inflight.pop(pid, None)
            if acked is not None:
                self._acked(acked, reason)
        elif packet.kind == w.PUBLISH:
            topic, in_pid, payload = w.incoming_publish(packet.flags, packet.body)
            if topic == self._confirm_topic:
                self._confirm(payload)
            else:
                # A command for the site (its session subscribed at registration): a
                # simulated gate holds no templates, so there is nothing to remove.
                self.c.commands += 1
            if in_pid is not None:
                self._out += w.puback_packet(in_pid)
        elif packet.kind == w.DISCONNECT:
            reason = packet.body[0] if packet.body else 0
            raise ConnectionError(f"the broker disconnected us (reason {reason:#x})")

    def _acked(self, seq: int, reason: int) -> None:
        entry = self.pending.get(seq)
        if entry is None:
            return
        if reason >= 0x80:
            # Refused (e.g. not authorised): kept, it would block the device forever.
            self.c.refused += 1
            self.c.last_refusal = f"PUBACK reason {reason:#x}"
            del self.pending[seq]
            return
        if not entry[2]:
            entry[2] = True
            self.c.acked += 1
        if not self._confirms:
            del self.pending[seq]

    def _confirm(self, payload: bytes) -> None:
        try:
            message = confirmation_for(payload, self.identity)
        except WireError as exc:
            log.error("%s: ignored a delivery confirmation (%s)", self.identity.username, exc)
            return
        if message.from_seq is None or message.through_seq is None:
            return  # a command ack's: this gate sends none
        low, high = message.from_seq, message.through_seq
        pending = self.pending
        if high - low + 1 <= len(pending):
            gone = [s for s in range(low, high + 1) if pending.pop(s, None) is not None]
        else:
            gone = [s for s in list(pending) if low <= s <= high]
            for s in gone:
                del pending[s]
        self.c.confirmed += len(gone)
        self._confirmed_at = self._clock()
        self._max_confirmed = max(self._max_confirmed, high)
        if gone:
            self._rounds = rounds_after(self._rounds, progressed=True)
            self._wait = self._delay()

    def _delay(self) -> float:
        return resend_delay_s(self._rounds, self._timeout, self._cap, self._jitter, self._draw())

    def check_timeout(self, now: float) -> None:
        """Publish unconfirmed events again when the oldest was sent ``confirm_timeout_s``
        ago and either nothing was confirmed for as long (the cloud stalled: all of them,
        from the oldest) or a later seq was confirmed (a stretch was lost: only those
        the cloud has passed). A cloud that confirms, only behind, gets no re-sends: at
        saturation they would only add load. At most ``resend_window`` per round; rounds
        wait one timeout, doubling (to the cap, with jitter) while nothing is confirmed."""
        if not self._confirms or self.sock is None or not self.pending:
            return
        if now - self._rewound_at < self._wait:
            return
        oldest_seq, oldest = next(iter(self.pending.items()))
        sent_at = oldest[1]
        assert isinstance(sent_at, float)
        if not sent_at or now - sent_at < self._timeout:
            return
        stalled = now - self._confirmed_at >= self._timeout
        if not stalled and self._max_confirmed <= oldest_seq:
            return
        self._rewound_at = now
        self._rounds = rounds_after(self._rounds, progressed=False)
        self._wait = self._delay()
        self.c.resends += 1
        if stalled:
            self._requeue(self.pending)
        else:
            passed = self._max_confirmed
            self._requeue(itertools.takewhile(lambda s: s < passed, self.pending))

    def _requeue(self, seqs: Iterable[int]) -> None:
        """Queue the first ``resend_window`` of these already-sent events ahead of what
        still waits for its first send (which keeps its place)."""
        pending = self.pending
        sent = (s for s in seqs if pending[s][1])
        again = list(itertools.islice(sent, self._window))
        chosen = set(again)
        self._tosend = deque([*again, *(s for s in self._tosend if s not in chosen)])

    @property
    def unsent(self) -> int:
        return len(self._tosend)
