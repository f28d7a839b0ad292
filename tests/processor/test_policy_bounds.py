"""A policies-ledger record with a number or string out of bounds (a careless or hostile
office writing the topic by hand) is refused as data: dead-lettered with its reason and
counted, the version in force kept, nothing raised. And no writer can produce one:
``PolicyVersion.encode`` refuses what every reader would refuse."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from edge_agent.wire.bounds import MAX_SAFE_INT, MAX_TIME_MS, MIN_TIME_MS
from stream_processor.errors import InvalidInput
from stream_processor.policy.keys import history_key, policy_key
from stream_processor.policy.retention import (
    MAX_APPLIED_BY,
    MAX_COMMENT,
    PolicyVersion,
    compile_version,
    decode_version,
)
from stream_processor.processor.ledger import LedgerRefusal, read_policy
from stream_processor.processor.ledgers import Ledgers
from stream_processor.processor.metrics import ProcessorMetrics
from stream_processor.quarantine import ConsumerMetrics, Coordinates, Quarantine
from stream_processor.store.sqlite import SqliteEventStore
from tests.processor.fuzz import EXTREME_FLOATS, EXTREME_INTS
from tests.processor.service_rig import ListSink
from tests.support.processor import BASE_POLICY, TENANT

pytestmark = pytest.mark.unit

NOW = 1_800_000_000_000
GOOD: dict[str, Any] = {
    "schema_version": 1, "tenant": TENANT, "version": 3, "applied_at_ms": NOW,
    "applied_by": "ops", "comment": "", "document": BASE_POLICY,
}  # fmt: skip
#: Each field's bounds: (lowest, highest) allowed.
INT_BOUNDS = {
    "schema_version": (1, 1),
    "version": (1, MAX_SAFE_INT),
    "applied_at_ms": (MIN_TIME_MS, MAX_TIME_MS),
}


def within(field: str, value: object) -> bool:
    low, high = INT_BOUNDS[field]
    return type(value) is int and low <= value <= high


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(INT_BOUNDS)),
    st.sampled_from(EXTREME_INTS)
    | st.sampled_from(EXTREME_FLOATS)
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([MIN_TIME_MS - 1, MAX_TIME_MS + 1, MAX_SAFE_INT + 1]),
)
def test_every_number_of_a_policy_record_is_bounded(field: str, value: float) -> None:
    data = json.dumps({**GOOD, field: value}).encode()
    ok = within(field, value)
    key = history_key(TENANT, int(value)) if ok and field == "version" else policy_key(TENANT)
    outcome = read_policy(key, data)
    if ok:
        assert outcome == data
        assert compile_version(data).version == json.loads(data)["version"]
    else:
        assert isinstance(outcome, LedgerRefusal), (field, value)
        assert outcome.reason == "invalid_policy"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("applied_by", "x" * (MAX_APPLIED_BY + 1)),
        ("applied_by", ""),
        ("comment", "x" * (MAX_COMMENT + 1)),
        ("tenant", "A" * 300),
        ("tenant", "acme\n"),
    ],
)
def test_a_policy_record_with_a_string_out_of_bounds_is_refused(field: str, value: str) -> None:
    data = json.dumps({**GOOD, field: value}).encode()
    outcome = read_policy(policy_key(TENANT), data)
    assert isinstance(outcome, LedgerRefusal) and outcome.reason == "invalid_policy"


@pytest.mark.parametrize(
    "change",
    [
        {"version": 2**63},
        {"version": 0},
        {"applied_at_ms": 2**64},
        {"applied_at_ms": 1},
        {"comment": "x" * (MAX_COMMENT + 1)},
        {"applied_by": ""},
    ],
)
def test_no_writer_can_encode_a_record_the_readers_refuse(change: dict[str, Any]) -> None:
    version = PolicyVersion(**{**GOOD, **change})
    with pytest.raises(InvalidInput, match="out of bounds"):
        version.encode()
    assert decode_version(PolicyVersion(**GOOD).encode()) == PolicyVersion(**GOOD)


def test_an_out_of_range_record_is_dead_lettered_counted_and_the_version_in_force_kept(
    tmp_path: Path,
) -> None:
    registry = CollectorRegistry()
    good = PolicyVersion(**GOOD).encode()
    table: dict[bytes, bytes] = {}
    dlq = ListSink()
    ledgers = Ledgers(
        {}, table, dlq, Quarantine("processor", ConsumerMetrics(registry)), ListSink(),
        ProcessorMetrics(registry), lambda: SqliteEventStore(tmp_path / "e.db"),
        consent_topic="c", policies_topic="p", command_key=b"k" * 32,
    )  # fmt: skip
    bad = json.dumps({**GOOD, "version": 2**64}).encode()

    async def apply() -> None:
        await ledgers.apply_policy(policy_key(TENANT), good, Coordinates("p", 0, 0))
        await ledgers.apply_policy(policy_key(TENANT), bad, Coordinates("p", 0, 1))

    asyncio.run(apply())
    assert table[policy_key(TENANT)] == good
    [letter] = dlq.letters
    assert (letter.reason, letter.source_offset) == ("invalid_policy", 1)
    assert (
        registry.get_sample_value(
            "facegate_processor_dead_letters_total", {"reason": "invalid_policy"}
        )
        == 1
    )
    assert (
        registry.get_sample_value("facegate_policy_version", {"tenant": TENANT}) == GOOD["version"]
    )


async def snapshot_of(topic: str, policy: bytes) -> tuple[dict[bytes, bytes], dict[int, int]]:
    """A start-up read of the ledger ``topic``: the policies ledger's latest is ``policy``."""
    if topic == "p":
        return {policy_key(TENANT): policy}, {0: 9}
    return {}, {0: 0}


def test_a_refused_record_last_in_the_start_up_snapshot_leaves_the_table_s_answer(
    tmp_path: Path,
) -> None:
    """A worker starting after the refused record would answer from a snapshot of the
    ledger until its table catches up, but the snapshot's latest value for the tenant is
    the refused one (and compaction may have removed the valid one before it): answers
    are the table's (the last valid version), and so is the position the batch gate
    waits on, not an error that would dead-letter every event of the tenant meanwhile."""
    registry = CollectorRegistry()
    good = PolicyVersion(**GOOD).encode()
    bad = json.dumps({**GOOD, "version": 2**64}).encode()
    table = {policy_key(TENANT): good}  # what the ledger agent kept
    ledgers = Ledgers(
        {}, table, ListSink(), Quarantine("processor", ConsumerMetrics(registry)), ListSink(),
        ProcessorMetrics(registry), lambda: SqliteEventStore(tmp_path / "e.db"),
        consent_topic="c", policies_topic="p", command_key=b"k" * 32,
    )  # fmt: skip

    asyncio.run(ledgers.open_views(lambda topic: snapshot_of(topic, bad)))
    assert ledgers.position("policies", 0) == -1  # the table's: it has read nothing yet
    policy = ledgers.policy_of(TENANT)
    assert policy is not None and policy.version == GOOD["version"]
    # A snapshot whose records are all valid is used until the table catches up.
    table.clear()
    asyncio.run(ledgers.open_views(lambda topic: snapshot_of(topic, good)))
    assert ledgers.position("policies", 0) == 8
    policy = ledgers.policy_of(TENANT)
    assert policy is not None and policy.version == GOOD["version"]


@pytest.mark.parametrize(
    ("where", "key"),
    [
        ("site", "site-1\n"),  # ``$`` alone would take it
        ("site", "s" * 64),
        ("camera", "gate-1\n"),
        ("camera", "g" * 100_000),
        ("camera", "gate-1/cam-1/extra"),
        ("camera", "Gate-1"),
    ],
)
def test_every_key_of_a_policy_document_is_a_bounded_id(where: str, key: str) -> None:
    doc = json.loads(json.dumps(BASE_POLICY))
    doc["sites"] = {key: {}} if where == "site" else {"site-1": {"cameras": {key: []}}}
    data = json.dumps({**GOOD, "document": doc}).encode()
    outcome = read_policy(policy_key(TENANT), data)
    assert isinstance(outcome, LedgerRefusal) and outcome.reason == "invalid_policy"
    assert len(outcome.detail) <= 300  # the detail never carries the 100 kB key


def test_camera_keys_a_policy_may_name() -> None:
    doc = json.loads(json.dumps(BASE_POLICY))
    doc["sites"] = {"site-1": {"cameras": {"gate-2": [], "gate-3/cam-1": ["access_control"]}}}
    data = json.dumps({**GOOD, "document": doc}).encode()
    assert read_policy(policy_key(TENANT), data) == data
