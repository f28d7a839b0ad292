"""Office enrolment and the consent ledger agree, or the missing step is named (pure)."""

from __future__ import annotations

import pytest

from edge_agent.gallery.model import Record
from stream_processor.policy.consent import ConsentRecord, ConsentStatus, GivenBy
from stream_processor.rights.enrolment import missing_steps

pytestmark = pytest.mark.unit

A, B, C = ("ps1_" + c * 32 for c in "abc")


def face(ps: str, ref: str = "C-1", **kw: object) -> Record:
    return Record(pseudonym=ps, enrolled_at_ms=0, consent_ref=ref, templates=[b"t"], **kw)  # type: ignore[arg-type]


def grant(ps: str, ref: str = "C-1", status: str = "granted", site: str = "site-1",
          purpose: str = "access_control", **kw: object) -> ConsentRecord:
    return ConsentRecord(tenant="acme", site=site, subject=ps, purpose=purpose,
                         status=ConsentStatus(status), given_by=kw.pop("given_by", GivenBy.SELF),  # type: ignore[arg-type]
                         evidence_ref=ref if status == "granted" else None, at_ms=1, **kw)  # type: ignore[arg-type]


def steps(gallery: list[Record], ledger: list[ConsentRecord]) -> dict[str, str]:
    found = missing_steps(gallery, ledger, tenant="acme", site="site-1", purpose="access_control")
    return {m.pseudonym: m.step for m in found}


def test_enrolled_with_a_matching_grant_is_complete() -> None:
    assert steps([face(A)], [grant(A)]) == {}


def test_each_missing_or_contradicting_step_is_named() -> None:
    found = steps(
        [face(A), face(B, ref="C-2"), face(C)],
        [grant(B, ref="C-9"), grant(C, status="withdrawn"), grant("ps1_" + "d" * 32)],
    )
    assert found == {
        A: "consent ledger: no grant for access_control",
        B: "consent ledger: grant evidence 'C-9' is not the enrolment's consent reference 'C-2'",
        C: "office gallery: consent withdrawn, face templates still enrolled",
        "ps1_" + "d" * 32: "office gallery: consent granted, no face enrolled",
    }


def test_a_minors_grant_carries_the_guardians_reference() -> None:
    kid = face(A, minor=True, guardian_consent_ref="G-1")
    guardian = grant(A, ref="G-1", minor=True, given_by=GivenBy.GUARDIAN)
    assert steps([kid], [guardian]) == {}
    assert A in steps([kid], [grant(A, ref="C-1", minor=True, given_by=GivenBy.GUARDIAN)])


def test_other_sites_purposes_and_card_only_residents_are_not_counted() -> None:
    card_only = Record(pseudonym=B, enrolled_at_ms=0, cards=["c1_x"])
    assert steps([face(A), card_only],
                 [grant(A), grant(A, site="site-2"), grant(B, purpose="visitor_management")]) == {}
