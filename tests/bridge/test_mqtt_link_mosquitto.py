"""The bridge's own MQTT v5 link against a real Mosquitto, one test per feature it
relies on: session present (clean_start=False, session expiry), Receive Maximum,
reason codes, Maximum Packet Size (both ways) and keep-alive.

The broker is this module's own (passwords, ACLs, ``max_keepalive 10``, debug
log), started from the Debian package like the stack's, so that a test can
freeze it (SIGSTOP) without disturbing any other test.
"""

from __future__ import annotations

import asyncio
import functools
import getpass
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
import pytest

from stream_processor.bridge import mqtt_codec as codec
from stream_processor.bridge.mqtt_link import ConnectRefused, MqttLink
from stream_processor.runtime.system import require_binary
from stream_processor.stack.procs import port_open
from tests.conftest import free_ports, make_state_dir, wait_for

pytestmark = [pytest.mark.component, pytest.mark.timeout(120)]

T = TypeVar("T")
BRIDGE, DEVICE = ("bridge", "bridge-pw"), ("device", "device-pw")
BROKER_MAX_PACKET = 8192
ACL = """user bridge
topic read in/#
topic write out/ok/#

user device
topic write in/#
topic write secret/#
topic read out/#
"""


@dataclass
class Broker:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def link(self, on_publish: Callable[[codec.Publish], None], **kw: Any) -> MqttLink:
        kw.setdefault("keepalive_s", 2)
        kw.setdefault("client_id", f"link-{uuid.uuid4().hex[:8]}")
        user, password = kw.pop("creds", BRIDGE)
        return MqttLink("127.0.0.1", self.port, username=user, password=password,
                        on_publish=on_publish, **kw)  # fmt: skip

    def publish(self, topic: str, payloads: list[bytes]) -> None:
        """Publish at QoS 1 as the device and wait for every PUBACK."""
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                             client_id=f"dev-{uuid.uuid4().hex[:8]}")  # fmt: skip
        client.username_pw_set(*DEVICE)
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        try:
            for info in [client.publish(topic, p, qos=1) for p in payloads]:
                info.wait_for_publish(10)
                assert info.rc == mqtt.MQTT_ERR_SUCCESS
        finally:
            client.disconnect()
            client.loop_stop()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    binary = require_binary("mosquitto", "mosquitto")
    passwd_tool = require_binary("mosquitto_passwd", "mosquitto")
    state = make_state_dir("facegate-linktest-")
    passwd = state / "passwd"
    passwd.touch(mode=0o600)
    for user, password in (BRIDGE, DEVICE):
        subprocess.run([passwd_tool, "-b", str(passwd), user, password], check=True)
    (state / "acl").write_text(ACL)
    port = free_ports(1)[0]
    conf = state / "mosquitto.conf"
    conf.write_text(
        "\n".join([
            f"listener {port} 127.0.0.1", "allow_anonymous false",
            f"password_file {passwd}", f"acl_file {state / 'acl'}",
            "max_keepalive 10", f"max_packet_size {BROKER_MAX_PACKET}",
            "max_queued_messages 0", "persistence false",
            f"log_dest file {state / 'mosquitto.log'}", "log_type all",
            "log_timestamp_format %s", f"user {getpass.getuser()}", "",
        ])
    )  # fmt: skip
    with (state / "stderr").open("wb") as out:  # errors before the log file opens
        proc = subprocess.Popen([binary, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
    b = Broker(port, proc, state / "mosquitto.log")
    try:
        wait_for(lambda: proc.poll() is not None or port_open("127.0.0.1", port), 10, "mosquitto")
        assert proc.poll() is None, (state / "stderr").read_text()
        yield b
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(state, ignore_errors=True)


def run(body: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(body(), 60))


async def until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.05)


def unacked_is(got: list[codec.Publish], acked: int, n: int) -> bool:
    return len(got) - acked == n


def publish_soon(broker: Broker, topic: str, payloads: list[bytes]) -> Awaitable[None]:
    return asyncio.to_thread(broker.publish, topic, payloads)


# -- session present ----------------------------------------------------------------
def test_session_present_on_reconnect_with_unacked_messages_redelivered(broker: Broker) -> None:
    async def body() -> None:
        got: list[codec.Publish] = []
        cid = f"sess-{uuid.uuid4().hex[:8]}"
        first = broker.link(got.append, client_id=cid, session_expiry_s=60)
        assert await first.open(["in/a/#"]) is False  # a new client id has no session
        await publish_soon(broker, "in/a/1", [b"m0", b"m1", b"m2"])
        await until(lambda: len(got) == 3, 10, "three deliveries")
        first.ack([got[0].packet_id])
        await first.drain()
        first.abort()  # m1 and m2 unacknowledged, no DISCONNECT
        await publish_soon(broker, "in/a/1", [b"m3"])  # queued while we are away
        again: list[codec.Publish] = []
        second = broker.link(again.append, client_id=cid, session_expiry_s=60)
        assert await second.open(["in/a/#"]) is True
        await until(lambda: len(again) == 3, 10, "redelivery")
        assert [(m.payload, m.dup) for m in again] == [(b"m1", True), (b"m2", True), (b"m3", False)]
        second.ack([m.packet_id for m in again])
        await second.close()

    run(body)


def test_an_expired_session_is_gone(broker: Broker) -> None:
    async def body() -> None:
        cid = f"exp-{uuid.uuid4().hex[:8]}"
        link = broker.link(lambda m: None, client_id=cid, session_expiry_s=1)
        assert await link.open(["in/b/#"]) is False
        await link.close()
        kept = broker.link(lambda m: None, client_id=cid, session_expiry_s=1)
        assert await kept.open(["in/b/#"]) is True  # reconnected within the expiry
        await kept.close()
        await asyncio.sleep(3)
        late = broker.link(lambda m: None, client_id=cid, session_expiry_s=1)
        assert await late.open(["in/b/#"]) is False
        await late.close()

    run(body)


# -- Receive Maximum ------------------------------------------------------------------
def test_the_broker_never_has_more_than_receive_maximum_unacked_in_flight(
    broker: Broker,
) -> None:
    async def body() -> None:
        got: list[codec.Publish] = []
        link = broker.link(got.append, receive_maximum=5)
        await link.open(["in/c/#"])
        await publish_soon(broker, "in/c/1", [b"%d" % i for i in range(30)])
        await until(lambda: len(got) == 5, 10, "the first five")
        await asyncio.sleep(1.0)
        assert len(got) == 5  # nothing more until we acknowledge
        link.ack([got[0].packet_id, got[1].packet_id])
        await until(lambda: len(got) == 7, 10, "two more after two acks")
        await asyncio.sleep(0.5)
        assert len(got) == 7
        acked = 2
        while acked < 30:
            window = min(5, 30 - acked)
            await until(functools.partial(unacked_is, got, acked, window), 10, "a full window")
            await asyncio.sleep(0.1)
            assert len(got) - acked == window  # never more unacknowledged than 5
            link.ack([m.packet_id for m in got[acked:]])
            acked = len(got)
        assert [m.payload for m in got] == [b"%d" % i for i in range(30)]
        await link.close()

    run(body)


# -- reason codes -----------------------------------------------------------------------
@pytest.mark.parametrize("creds", [("bridge", "wrong"), ("nobody", "x")])
def test_bad_credentials_are_refused_with_the_connack_reason(
    broker: Broker, creds: tuple[str, str]
) -> None:
    async def body() -> ConnectRefused:
        link = broker.link(lambda m: None, creds=creds)
        with pytest.raises(ConnectRefused) as caught:
            await link.open(["in/#"])
        assert not link.connected
        return caught.value

    refusal = run(body)
    # Mosquitto 2.0 answers a wrong password or an unknown user with 0x87 "not
    # authorized" (its code path for any failed password check), never a success.
    assert refusal.reason_codes == (0x87,)
    assert "not authorized" in str(refusal) and not refusal.retriable


def test_a_subscription_outside_the_acl_is_granted_but_delivers_nothing(broker: Broker) -> None:
    """Mosquitto 2.0.11 never refuses a SUBSCRIBE (it grants QoS 1 and filters
    deliveries by the ACL), so the link cannot take a granted SUBACK as read
    access; a refusing SUBACK is tested against a scripted peer in
    test_a_refused_subscription_raises_with_the_suback_codes."""

    async def body() -> None:
        got: list[codec.Publish] = []
        link = broker.link(got.append)
        await link.open(["in/s/#", "secret/#"])
        await publish_soon(broker, "secret/x", [b"not for the bridge"])
        await publish_soon(broker, "in/s/1", [b"for the bridge"])
        await until(lambda: len(got) == 1, 10, "the allowed delivery")
        await asyncio.sleep(0.5)
        assert [(m.topic, m.payload) for m in got] == [("in/s/1", b"for the bridge")]
        link.ack([got[0].packet_id])
        await link.close()

    run(body)


def test_publish_reason_codes_allowed_refused_and_too_large(broker: Broker) -> None:
    async def body() -> None:
        link = broker.link(lambda m: None)
        await link.open(["in/d/#"])
        assert await link.publish("out/ok/site-1", b"open") == 0x10  # no subscribers
        # Over the broker's Maximum Packet Size (CONNACK): not sent, or we'd be cut off.
        assert await link.publish("out/ok/site-1", b"x" * BROKER_MAX_PACKET) == 0x95
        assert link.connected
        assert await link.publish("out/ok/site-1", b"still fine") == 0x10
        # Last: after a PUBACK 0x87, Mosquitto 2.0.11 also drops the connection
        # (the bridge dead-letters the command and reconnects).
        assert await link.publish("out/forbidden/site-1", b"open") == 0x87  # ACL
        await link.close()

    run(body)


# -- Maximum Packet Size (incoming) --------------------------------------------------------
def test_the_broker_sends_nothing_over_our_maximum_packet_size(broker: Broker) -> None:
    async def body() -> None:
        got: list[codec.Publish] = []
        link = broker.link(got.append, maximum_packet_size=1024)
        await link.open(["in/e/#"])
        await publish_soon(broker, "in/e/1", [b"big" * 1000, b"small", b"s" * 900])
        await until(lambda: len(got) == 2, 10, "the two that fit")
        await asyncio.sleep(0.5)
        assert [m.payload for m in got] == [b"small", b"s" * 900]
        assert link.connected
        await link.close()

    run(body)


def test_an_oversized_incoming_frame_is_refused_with_disconnect_0x95(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """We announce more than our reader takes (as a broken or hostile broker would
    ignore our limit): the frame Mosquitto sends is refused, and we say why."""
    real_connect = codec.connect

    def announcing_more(*args: Any, **kw: Any) -> bytes:
        kw["maximum_packet_size"] = codec.MAX_PACKET
        return real_connect(*args, **kw)

    monkeypatch.setattr(codec, "connect", announcing_more)

    cid = f"big-{uuid.uuid4().hex[:8]}"

    async def body() -> None:
        link = broker.link(lambda m: None, maximum_packet_size=1024, client_id=cid)
        await link.open(["in/f/#"])
        await publish_soon(broker, "in/f/1", [b"small", b"big" * 1000])
        await asyncio.wait_for(link.wait_closed(), 10)
        assert isinstance(link.error, codec.ProtocolError)
        assert link.error.reason_code == codec.PACKET_TOO_LARGE
        # Told the truth, the broker drops the big one and redelivers the rest.
        monkeypatch.setattr(codec, "connect", real_connect)
        got: list[codec.Publish] = []
        honest = broker.link(got.append, maximum_packet_size=1024, client_id=cid)
        assert await honest.open(["in/f/#"]) is True
        await until(lambda: len(got) == 1, 10, "the small one again")
        await asyncio.sleep(0.5)
        assert [m.payload for m in got] == [b"small"]
        honest.ack([got[0].packet_id])
        await honest.close()

    run(body)
    assert re.search(rf"Client {cid} disconnected", broker.log_text())


# -- keep-alive -------------------------------------------------------------------------
def pingreqs(log: str, client_id: str) -> list[int]:
    return [int(t) for t in re.findall(rf"^(\d+): Received PINGREQ from {client_id}$", log, re.M)]


def test_the_server_keep_alive_is_honoured(broker: Broker) -> None:
    async def body() -> None:
        link = broker.link(lambda m: None, keepalive_s=600)
        await link.open(["in/g/#"])
        assert link.keepalive_s == 10  # the broker's max_keepalive, from CONNACK
        await link.close()

    run(body)


def test_pingreqs_go_out_on_time_and_keep_an_idle_link_up(broker: Broker) -> None:
    async def body() -> None:
        link = broker.link(lambda m: None, keepalive_s=2, client_id="ka-idle")
        await link.open(["in/g/#"])
        await asyncio.sleep(6.5)  # idle: Mosquitto drops a client silent for 1.5 x 2 s
        assert link.connected and link.error is None
        await link.close()

    run(body)
    times = pingreqs(broker.log_text(), "ka-idle")
    assert len(times) >= 5  # one a second (half the keep-alive)
    assert max(b - a for a, b in zip(times, times[1:], strict=False)) <= 2


def test_a_silent_broker_is_detected_and_a_new_link_resumes_the_session(
    broker: Broker,
) -> None:
    async def body() -> None:
        got: list[codec.Publish] = []
        cid = f"silent-{uuid.uuid4().hex[:8]}"
        link = broker.link(got.append, client_id=cid, keepalive_s=1)
        await link.open(["in/h/#"])
        await publish_soon(broker, "in/h/1", [b"before"])
        await until(lambda: len(got) == 1, 10, "a delivery")
        os.kill(broker.proc.pid, signal.SIGSTOP)  # the TCP connection stays open
        try:
            started = time.monotonic()
            await asyncio.wait_for(link.wait_closed(), 5)
            took = time.monotonic() - started
        finally:
            os.kill(broker.proc.pid, signal.SIGCONT)
        assert took < 2.5  # within 1.5 keep-alives and a tick
        assert "silent" in str(link.error)
        # What the service does when a link closes: a new one, same client id.
        again: list[codec.Publish] = []
        second = broker.link(again.append, client_id=cid, keepalive_s=1)
        assert await second.open(["in/h/#"]) is True
        await until(lambda: len(again) == 1, 10, "the unacknowledged message")
        assert again[0].payload == b"before" and again[0].dup
        second.ack([again[0].packet_id])
        await second.close()

    run(body)


# -- what Mosquitto 2.0.11 never sends: a scripted peer -----------------------------------
def test_a_refused_subscription_raises_with_the_suback_codes() -> None:
    """A broker that refuses SUBSCRIBE (0x87 per filter, e.g. an ACL-checking one):
    the link raises ConnectRefused with the codes and closes."""
    from tests.bridge import mqtt_reference as ref

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buf = await reader.read(4096)  # CONNECT
        assert ref.decode(buf)[0]["type"] == "connect"
        writer.write(ref.encode({"type": "connack", "session_present": False, "reason": 0,
                                 "props": {}}))  # fmt: skip
        sub, _ = ref.decode(await reader.read(4096))
        writer.write(
            ref.encode(
                {
                    "type": "suback",
                    "packet_id": sub["packet_id"],
                    "props": {31: "not authorized"},
                    "reasons": [0x01, 0x87],
                }
            )
        )
        await writer.drain()
        await reader.read(4096)  # until the link closes

    async def body() -> ConnectRefused:
        server = await asyncio.start_server(peer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        link = MqttLink("127.0.0.1", port, "c", "u", "p", lambda m: None)
        try:
            with pytest.raises(ConnectRefused) as caught:
                await link.open(["in/#", "secret/#"])
            assert not link.connected
            return caught.value
        finally:
            server.close()

    refusal = run(body)
    assert refusal.reason_codes == (0x01, 0x87) and not refusal.retriable


# -- the bridge itself: keep-alive detects a frozen broker, the service reconnects ------
def test_the_bridge_detects_a_frozen_broker_and_reconnects(rig: Any) -> None:
    """``facegate bridge run`` with a 5 s keep-alive, its Mosquitto frozen (SIGSTOP,
    the TCP connection stays open): the link says the broker is silent within 1.5
    keep-alives, the bridge connects again once it is back, and events still reach
    Kafka."""
    from edge_agent.wire import encode_event
    from stream_processor.stack.mosquitto import Mosquitto
    from tests.bridge.conftest import events_for

    rig.p.extra_env["FACEGATE_BRIDGE_KEEPALIVE_S"] = "5"
    rig.prepare_session()
    conn = rig.device("site-ka")
    raw = rig.p.topics().raw
    rig.start_bridge()
    before = [encode_event(e) for e in events_for("site-ka", 5)]
    assert rig.publish(conn, before).wait() == 0
    wait_for(lambda: rig.count(raw) == 5, 120, "the first events in Kafka")
    pid = Mosquitto(rig.settings).status().pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    frozen = time.monotonic()
    try:  # silent past the keep-alive, noticed at the next half-keep-alive tick
        wait_for(lambda: "broker silent" in rig.p.log("bridge"), 15, "the bridge to notice")
        assert time.monotonic() - frozen < 5 * 1.5 + 2
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for(lambda: rig.p.log("bridge").count("MQTT connected") >= 2, 60, "a reconnect")
    after = [encode_event(e) for e in events_for("site-ka", 5, start_seq=5)]
    assert rig.publish(conn, after).wait() == 0
    wait_for(lambda: rig.count(raw) >= 10, 120, "the later events in Kafka")
