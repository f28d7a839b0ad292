"""A dead letter keeps the reason, the size, a keyed digest and the field names seen;
no value of the refused payload can be read back from it."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from stream_processor.dead_letter import (
    ODD_FIELD,
    DeadLetter,
    decode_dead_letter,
    keyed_digest,
    scrub_detail,
)
from stream_processor.quarantine import ConsumerMetrics, Coordinates, Quarantine, Refusal, guard
from tests.support.hostile import ID_NUMBER, NAME, assert_unreadable, hostile_payload

pytestmark = pytest.mark.unit

KEY = b"d" * 32


def test_a_template_or_a_name_cannot_be_read_back() -> None:
    raw = hostile_payload()
    detail = f"Object contains unknown field `{NAME}`; got '{ID_NUMBER}' at `$.name`"
    letter = DeadLetter.build(raw, "unknown_field", detail, "facegate/v1/a/b/c/d/events",
                              1_800_000_000_000, "bridge", key=KEY)  # fmt: skip
    encoded = letter.encode()
    assert_unreadable(encoded)
    back = decode_dead_letter(encoded)
    assert back == letter
    assert back.raw_len == len(raw)
    assert back.raw_digest == keyed_digest(raw, KEY) != keyed_digest(raw, b"e" * 32)
    assert back.fields_seen == sorted(
        [ODD_FIELD, "id_number", "name", "schema_version", "template", "template_hex",
         "template_ints"]
    )  # fmt: skip
    assert "`$.name`" in back.detail and "<redacted>" in back.detail


def test_a_device_path_stays_in_the_detail() -> None:
    detail = "payload names acme/site-b/gate-1/cam-1, topic proves acme/site-a/gate-1/cam-1"
    assert scrub_detail(detail) == detail
    assert "<redacted>" in scrub_detail("got " + base64.b64encode(b"\xfb" * 40).decode())


def test_the_digest_tells_the_same_payload_again_and_nothing_else() -> None:
    a = DeadLetter.build(b'{"x":1}', "r", "", "t", 0, "bridge", key=KEY)
    b = DeadLetter.build(b'{"x":1}', "r", "", "t", 0, "bridge", key=KEY)
    c = DeadLetter.build(b'{"x":2}', "r", "", "t", 0, "bridge", key=KEY)
    assert a.raw_digest == b.raw_digest != c.raw_digest


@given(st.binary(min_size=12, max_size=400))
def test_no_run_of_arbitrary_bytes_survives(raw: bytes) -> None:
    letter = DeadLetter.build(raw, "bad_json", "not JSON", "t", 0, "bridge", key=KEY)
    encoded = letter.encode()
    assert raw not in encoded and base64.b64encode(raw) not in encoded


@given(st.text(st.characters(exclude_characters="`'\""), min_size=1, max_size=60))
def test_quoted_values_leave_the_detail(value: str) -> None:
    scrubbed = scrub_detail(f"got `{value}` for field `seq`")
    assert "`seq`" in scrubbed
    if not all(c.isalnum() or c in "_.$[]/-" for c in value) or len(value) > 48:
        assert f"`{value}`" not in scrubbed


def test_the_consumers_quarantine_keeps_no_value() -> None:
    sent: list[tuple[bytes, bytes]] = []

    class Sink:
        async def send(self, key: bytes, value: bytes) -> None:
            sent.append((key, value))

    q = Quarantine("erasure_acks", ConsumerMetrics(CollectorRegistry()))

    async def handle() -> Refusal | None:
        return Refusal("unknown_field", f"unknown field `{NAME}`")

    at = Coordinates("facegate.edge.acks", 0, 7)
    asyncio.run(guard(handle, hostile_payload(), at, q, Sink()))
    ((_, value),) = sent
    assert_unreadable(value)
    letter = decode_dead_letter(value)
    assert (letter.source_offset, letter.raw_len) == (7, len(hostile_payload()))
    # the processor's quarantine writes through the same Quarantine.letter
    _, value = q.letter(hostile_payload(), Refusal("store_refused", f"value '{NAME}'"), at)
    assert_unreadable(value)


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from stream_processor.dead_letter import KEY_FILE, _load_or_create_key
    from stream_processor.rights.office_key import office_key

    path = tmp_path / KEY_FILE
    with ThreadPoolExecutor(8) as pool:
        dlq = set(pool.map(lambda _: _load_or_create_key(path), range(32)))
        office = set(pool.map(lambda _: office_key(tmp_path), range(32)))
    assert len(dlq) == 1 and len(next(iter(dlq))) == 32
    assert len(office) == 1 and len(next(iter(office))) == 32
    assert sorted(p.name for p in (tmp_path / "secrets").iterdir()) == ["office-identifiers.key"]
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == [KEY_FILE]
    assert path.stat().st_mode & 0o777 == 0o600
