"""Pure policy: documents, purposes, retention, consent and the per-event decision."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from stream_processor.policy.consent import (
    ConsentRecord,
    ConsentState,
    ConsentStatus,
    GivenBy,
    effective_consent,
)
from stream_processor.policy.decision import Discard, DiscardReason, Store, decide
from stream_processor.policy.document import PolicyDocument, parse_policy_yaml
from stream_processor.policy.durations import format_duration_ms, parse_duration_ms
from stream_processor.policy.retention import CompiledPolicy, PolicyVersion, compile_version
from tests.support.processor import BASE_POLICY, make_event, subject

pytestmark = pytest.mark.unit

DAY = 86_400_000


def doc(**changes: Any) -> dict[str, Any]:
    d = copy.deepcopy(BASE_POLICY)
    d.update(changes)
    return d


def compiled(d: dict[str, Any] | None = None) -> CompiledPolicy:
    return CompiledPolicy(PolicyDocument.model_validate(d or doc()))


def test_durations() -> None:
    assert parse_duration_ms("30d") == 30 * DAY
    assert parse_duration_ms(0) == parse_duration_ms("0") == 0
    assert format_duration_ms(parse_duration_ms("3y")) == "3y"
    for bad in ("30", 30, "3 days", "-1d", "1.5d"):
        with pytest.raises(ValueError):
            parse_duration_ms(bad)


def test_base_policy_is_valid_and_yaml_round_trips() -> None:
    import yaml

    parsed = parse_policy_yaml(yaml.safe_dump(doc()))
    assert parsed == PolicyDocument.model_validate(doc())
    # Every field survives a dump and a parse, not only the tenant: the document
    # ``policy show`` prints is the one that was applied.
    dumped = parsed.model_dump(mode="json")
    assert parse_policy_yaml(yaml.safe_dump(dumped)) == parsed
    assert dumped["tenant"] == "acme"
    assert dumped["retention"] == doc()["retention"]
    assert dumped["purposes"].keys() == doc()["purposes"].keys()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"retention": {"key_card": {"access_control": "4y"}}}, "exceeds the legal ceiling"),
        ({"legal_ceiling": "1y", "retention": {"key_card": {"access_control": "400d"}}},
         "exceeds the legal ceiling 1y"),
        ({"legal_ceiling": "5y"}, "exceeds the maximum 3y"),
        ({"purposes": {"public_security": {"description": "keep everyone safe always"}}},
         "catch-all"),
        ({"camera_purposes": ["marketing"]}, "not declared"),
        ({"retention": {"unknown_face": {"access_control": "1d"}}}, "never stored individually"),
        ({"unknown_face_search": True}, "refused by design"),
        ({"sites": {"site-1": {"movement_trails": True}}}, "refused by design"),
        ({"surprise": 1}, "Extra inputs are not permitted"),
        ({"retention": {"key_card": {"access_control": 30}}}, "needs a unit"),
        ({"transport": {"raw_retention": "10s"}}, "at least 1m"),
    ],
)  # fmt: skip
def test_invalid_policies_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PolicyDocument.model_validate(doc(**change))


def test_site_overrides_and_camera_purposes() -> None:
    p = compiled(
        doc(
            sites={
                "site-2": {
                    "retention": {"face_match": {"access_control": "7d"}},
                    "cameras": {"gate-9": [], "gate-1/cam-2": ["parcel_delivery"]},
                }
            }
        )
    )
    assert p.retention_ms("site-1", "face_match", "access_control") == 30 * DAY
    assert p.retention_ms("site-2", "face_match", "access_control") == 7 * DAY
    assert p.retention_ms("site-2", "key_card", "access_control") == 90 * DAY
    assert p.retention_ms("site-1", "key_card", "parcel_delivery") is None
    assert p.allowed_purposes("site-1", "gate-9", "cam-1") == {"access_control"}
    assert p.allowed_purposes("site-2", "gate-9", "cam-1") == frozenset()
    assert p.allowed_purposes("site-2", "gate-1", "cam-2") == {"parcel_delivery"}


def grant(**kw: Any) -> ConsentRecord:
    base: dict[str, Any] = dict(
        tenant="acme", site="site-1", subject=subject(1), purpose="access_control",
        status=ConsentStatus.GRANTED, given_by=GivenBy.SELF, evidence_ref="f1",
        at_ms=1_700_000_000_000,
    )  # fmt: skip
    base.update(kw)
    return ConsentRecord(**base)


def test_consent_records() -> None:
    with pytest.raises(ValueError, match="guardian"):
        grant(minor=True)
    assert grant(minor=True, given_by=GivenBy.GUARDIAN).minor
    with pytest.raises(ValueError, match="evidence"):
        grant(evidence_ref=None)
    withdrawn = grant(status=ConsentStatus.WITHDRAWN, evidence_ref=None, at_ms=1_700_000_000_001)
    everything = grant(
        purpose="*", status=ConsentStatus.WITHDRAWN, evidence_ref=None, at_ms=1_700_000_000_002
    )
    assert effective_consent(grant(), None) is ConsentState.GRANTED
    assert effective_consent(withdrawn, None) is ConsentState.WITHDRAWN
    assert effective_consent(grant(), everything) is ConsentState.WITHDRAWN
    assert effective_consent(grant(at_ms=1_700_000_000_003), everything) is ConsentState.GRANTED
    assert effective_consent(None, None) is ConsentState.NONE


@pytest.mark.parametrize(
    ("event_kw", "consent", "expected"),
    [
        ({}, ConsentState.GRANTED, "store"),
        ({}, ConsentState.NONE, DiscardReason.NO_CONSENT),
        ({}, ConsentState.WITHDRAWN, DiscardReason.CONSENT_WITHDRAWN),
        ({"kind": "key_card"}, ConsentState.NONE, "store"),
        ({"kind": "manual_open", "subject_id": None}, ConsentState.NONE, "store"),
        ({"kind": "unknown_face"}, ConsentState.NONE, DiscardReason.UNKNOWN_FACE_COUNTED_ONLY),
        ({"purpose": "marketing"}, ConsentState.GRANTED, DiscardReason.PURPOSE_NOT_DECLARED),
        ({"purpose": "parcel_delivery"}, ConsentState.GRANTED,
         DiscardReason.PURPOSE_NOT_ALLOWED_AT_CAMERA),
        ({"occurred_at_ms": 1_600_000_000_000}, ConsentState.GRANTED,
         DiscardReason.EXPIRED_ON_ARRIVAL),
    ],
)  # fmt: skip
def test_decide(event_kw: dict[str, Any], consent: ConsentState, expected: Any) -> None:
    event = make_event(**event_kw)
    now_ms = max(event.occurred_at_ms + 1000, 1_700_000_000_000)
    verdict = decide(event, compiled(), consent, now_ms=now_ms)
    if expected == "store":
        assert isinstance(verdict, Store)
        rule = compiled().retention_ms(event.site, event.kind.value, event.purpose)
        assert verdict.expires_at_ms == event.occurred_at_ms + rule
    else:
        assert verdict == Discard(expected)


def test_decide_without_policy_and_with_zero_or_missing_rules() -> None:
    event = make_event("key_card")
    assert decide(event, None, ConsentState.NONE, 0) == Discard(DiscardReason.NO_POLICY)
    zero = compiled(doc(retention={"key_card": {"access_control": 0}}))
    assert decide(event, zero, ConsentState.NONE, 0) == Discard(DiscardReason.RETENTION_ZERO)
    missing = compiled(doc(retention={"pin": {"access_control": "1d"}}))
    assert decide(event, missing, ConsentState.NONE, 0) == Discard(DiscardReason.NO_RETENTION_RULE)


def test_discard_reasons_hold_no_subject() -> None:
    """A discard is a bare reason: nothing about the person travels with it."""
    assert Discard.__slots__ == ("reason",)
    assert all(r.value.isidentifier() and "ps1_" not in r.value for r in DiscardReason)


def test_policy_version_compiles_from_bytes() -> None:
    v = PolicyVersion(
        tenant="acme", version=3, applied_at_ms=1_790_000_000_000, applied_by="op", document=doc()
    ).encode()
    p = compile_version(v)
    assert (p.tenant, p.version) == ("acme", 3)
    assert compile_version(v) is p  # cached: decided per event without re-parsing


def test_sweeper_cutoffs_never_guess_without_a_policy() -> None:
    from stream_processor.processor.sweeper import cutoffs_for

    groups = [("acme", "site-1", "face_match", "access_control"), ("other", "s", "pin", "x")]
    cuts = cutoffs_for(groups, lambda t: compiled() if t == "acme" else None, now_ms=100 * DAY)
    assert cuts[0].cutoff_ms == 70 * DAY
    assert cuts[1].cutoff_ms == 0
