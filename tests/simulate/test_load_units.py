"""The load simulator's pure parts: spec validation, how the load is split over
processes, and the MQTT v5 framing it speaks instead of paho."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.errors import InvalidInput
from edge_agent.pseudonym import SiteSecret
from edge_agent.simulate import STORED_KINDS, LoadSpec, SimAccount
from edge_agent.simulate import mqtt_wire as w
from edge_agent.simulate.load import plan_workers
from edge_agent.uplink.settings import DeviceConnection

pytestmark = pytest.mark.unit


def account(i: int) -> SimAccount:
    conn = DeviceConnection.model_validate({
        "tenant": "t", "site": f"site-{i % 3}", "gate": f"gate-{i}", "device": "sim",
        "mqtt": {"host": "127.0.0.1", "port": 1883, "username": f"u{i}", "password": "p"},
    })  # fmt: skip
    return SimAccount(conn, SiteSecret("t", f"site-{i % 3}", b"k" * 32))


@given(rate=st.one_of(st.floats(max_value=-1e-9), st.just(math.inf), st.just(math.nan),
                      st.floats(min_value=1e7 + 1, allow_infinity=False)))  # fmt: skip
def test_a_negative_infinite_or_absurd_rate_is_refused_by_name(rate: float) -> None:
    with pytest.raises(InvalidInput, match="rate must be"):
        LoadSpec(rate=rate, events=1)


@given(
    sites=st.integers(max_value=0) | st.integers(min_value=1),
    per_site=st.integers(max_value=0) | st.integers(min_value=1, max_value=200),
)
def test_sizes_are_positive_and_bounded(sites: int, per_site: int) -> None:
    ok = sites >= 1 and per_site >= 1 and sites * per_site <= 100_000
    if ok:
        spec = LoadSpec(sites=sites, devices_per_site=per_site, events=1)
        assert spec.devices == sites * per_site
    else:
        with pytest.raises(InvalidInput, match="load spec: "):
            LoadSpec(sites=sites, devices_per_site=per_site, events=1)


@given(
    duration=st.none() | st.floats(allow_nan=True),
    events=st.none() | st.integers(min_value=-10, max_value=10**13),
)
def test_the_run_ends_by_a_positive_duration_or_event_count(
    duration: float | None, events: int | None
) -> None:
    good_duration = duration is None or (math.isfinite(duration) and duration > 0)
    good_events = events is None or 1 <= events <= 10**12
    ok = (duration is not None or events is not None) and good_duration and good_events
    if ok:
        LoadSpec(duration_s=duration, events=events)
    else:
        with pytest.raises(InvalidInput, match="load spec: .*(duration|events)"):
            LoadSpec(duration_s=duration, events=events)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"confirm_timeout_s": 0}, "confirm_timeout_s"),
        ({"drain_timeout_s": -1}, "drain_timeout_s"),
        ({"max_unconfirmed": 0}, "max_unconfirmed"),
        ({"processes": 0}, "processes"),
        ({"port": 70000}, "port"),
        ({"first_seq": -1}, "first_seq"),
        ({"stored_kinds": frozenset({"selfie"})}, "stored_kinds"),
    ],
)
def test_each_bad_knob_names_itself(change: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput, match=field):
        LoadSpec(events=1, **change)  # type: ignore[arg-type]


@given(
    devices=st.integers(1, 40), procs=st.integers(1, 8),
    events=st.none() | st.integers(1, 10_000), rate=st.floats(0, 1e6),
)  # fmt: skip
def test_the_load_is_split_without_losing_a_device_or_an_event(
    devices: int, procs: int, events: int | None, rate: float
) -> None:
    spec = LoadSpec(devices_per_site=devices, rate=rate, events=events, duration_s=10,
                    processes=procs)  # fmt: skip
    plans = plan_workers(spec, [account(i) for i in range(devices)], first_seq=7)
    usernames = [e.username for p in plans for e, _ in p.devices]
    if events is None:
        assert sorted(usernames) == sorted(f"u{i}" for i in range(devices))
        assert math.isclose(sum(p.rate for p in plans), rate, rel_tol=1e-9, abs_tol=1e-9)
    else:
        assert sum(p.events or 0 for p in plans) == events
        assert len(set(usernames)) == len(usernames)
    assert all(p.first_seq == 7 and p.stored_kinds == STORED_KINDS for p in plans)


def test_the_default_first_seq_never_overlaps_an_earlier_run() -> None:
    """Wall-clock ms × 1000: a device would need 1,000 events per ms to catch up."""
    assert LoadSpec(events=1).first_seq is None  # resolved at run time
    assert (2**53 - 1) // 1000 > 4_102_444_800_000  # still a safe integer in 2100


@given(st.integers(0, 2**28 - 1))
def test_varint_round_trips(n: int) -> None:
    buf = bytearray(b"\x30" + w.varint(n) + b"x" * n) if n < 5000 else None
    encoded = w.varint(n)
    assert w._read_varint(encoded, 0) == (n, len(encoded))
    if buf is not None:
        (packet,) = w.split_packets(buf)
        assert packet.kind == 3 and len(packet.body) == n and buf == b""


def test_split_packets_keeps_a_partial_packet_for_later() -> None:
    whole = w.publish_packet(w.publish_parts("a/b"), 9, b"payload")
    buf = bytearray(whole + w.puback_packet(9) + whole[:5])
    packets = w.split_packets(buf)
    assert [p.kind for p in packets] == [w.PUBLISH, w.PUBACK]
    assert w.incoming_publish(packets[0].flags, packets[0].body) == ("a/b", 9, b"payload")
    assert w.puback(packets[1].body) == (9, 0)
    assert bytes(buf) == whole[:5]


def test_connack_reads_receive_maximum_past_other_properties() -> None:
    props = b"\x21\x03\xe8" + b"\x1f\x00\x02ok" + b"\x26\x00\x01k\x00\x01v" + b"\x24\x01"
    body = b"\x00\x00" + w.varint(len(props)) + props
    assert w.connack(body) == (0, 1000)
    assert w.connack(b"\x00\x87\x00") == (0x87, 65535)
    with pytest.raises(w.MqttProtocolError):
        w.connack(b"\x00\x00\x01\x7f")


@given(seed=st.integers(0, 2**32), seq=st.integers(0, 2**53 - 1),
       now_ms=st.integers(1_600_000_000_000, 4_000_000_000_000))  # fmt: skip
def test_a_fast_event_is_the_wire_encoding_of_a_valid_gate_event(
    seed: int, seq: int, now_ms: int
) -> None:
    from edge_agent.simulate import SyntheticGate
    from edge_agent.simulate.fast_events import POOL, FastGate, FastIds
    from edge_agent.wire import decode_event, encode_event
    from edge_agent.wire.topics import DeviceIdentity

    ident = DeviceIdentity("t", "site-1", "gate-1", "sim")
    gate = FastGate(SyntheticGate(ident, SiteSecret("t", "site-1", b"k" * 32), seed=seed),
                    FastIds(seed))  # fmt: skip
    ids: list[str] = []
    kinds = set()
    for _ in range(POOL):
        payload, kind = gate.make(seq, now_ms)
        event = decode_event(payload)  # strict, as the bridge decodes
        assert encode_event(event) == payload
        assert (event.seq, event.occurred_at_ms, event.kind.value) == (seq, now_ms, kind)
        assert (event.tenant, event.gate, event.device) == ("t", "gate-1", "sim")
        ids.append(event.event_id)
        kinds.add(kind)
    assert len(set(ids)) == POOL and ids == sorted(ids)  # unique and ordered within one ms
    assert {"face_match", "key_card"} <= kinds


def test_fast_ids_are_time_ordered_uuid7_across_milliseconds() -> None:
    import uuid

    from edge_agent.simulate.fast_events import FastIds

    ids = FastIds(1)
    made = [ids.next(1_700_000_000_000 + i // 5000) for i in range(20_000)]
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all(uuid.UUID(e).version == 7 for e in made[:100])
    assert uuid.UUID(made[0]).int >> 80 == 1_700_000_000_000


def test_plain_pubacks_are_taken_in_bulk_and_the_rest_is_left_in_order() -> None:
    refused = b"\x40\x03\x00\x07\x87"  # PUBACK with a reason: the general path
    confirm = w.publish_packet(w.publish_parts("c"), 1, b"{}")
    buf = bytearray(w.puback_packet(5) + w.puback_packet(6) + refused + w.puback_packet(8)
                    + confirm + b"\x40\x02\x00")  # fmt: skip
    assert w.take_pubacks(buf) == [5, 6]
    (packet,) = w.split_packets(buf, limit=1)
    assert w.puback(packet.body) == (7, 0x87)
    assert w.take_pubacks(buf) == [8]
    assert [p.kind for p in w.split_packets(buf)] == [w.PUBLISH]
    assert w.take_pubacks(buf) == [] and bytes(buf) == b"\x40\x02\x00"  # incomplete: kept


def test_a_success_reason_code_takes_the_fast_path_too() -> None:
    buf = bytearray(b"\x40\x03\x00\x01\x10" + b"\x40\x03\x00\x02\x00" + b"\x40\x03\x00\x03")
    assert w.take_pubacks(buf) == [1, 2]
    assert bytes(buf) == b"\x40\x03\x00\x03"  # its reason byte has not arrived yet
