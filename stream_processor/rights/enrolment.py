"""Enrolment at the site office and the cloud's consent ledger must agree: which step is
missing for whom (pure: gallery records and ledger records in, findings out)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from edge_agent.gallery.model import Record
from stream_processor.policy.consent import ConsentRecord, ConsentStatus


@dataclass(frozen=True, slots=True)
class MissingStep:
    """One resident (by pseudonym) whose enrolment and consent grant do not match."""

    pseudonym: str
    step: str


def evidence_of(record: Record) -> str | None:
    """The consent reference the ledger grant must carry: a minor's is the guardian's."""
    return record.guardian_consent_ref if record.minor else record.consent_ref


def missing_steps(
    gallery: Iterable[Record], ledger: Iterable[ConsentRecord], *, tenant: str, site: str,
    purpose: str,
) -> list[MissingStep]:
    """Face templates need a grant for ``purpose`` with the enrolment's consent reference;
    a grant for a face purpose with no templates at the office is an enrolment not done."""
    grants = {
        r.subject: r for r in ledger
        if (r.tenant, r.site, r.purpose) == (tenant, site, purpose)
    }  # fmt: skip
    found: list[MissingStep] = []
    enrolled = set()
    for record in gallery:
        if not record.templates:
            continue
        enrolled.add(record.pseudonym)
        grant = grants.get(record.pseudonym)
        wanted = evidence_of(record)
        if grant is None:
            found.append(MissingStep(record.pseudonym, f"consent ledger: no grant for {purpose}"))
        elif grant.status is not ConsentStatus.GRANTED:
            found.append(MissingStep(
                record.pseudonym, "office gallery: consent withdrawn, face templates still enrolled"
            ))  # fmt: skip
        elif grant.evidence_ref != wanted:
            found.append(MissingStep(
                record.pseudonym,
                f"consent ledger: grant evidence {grant.evidence_ref!r} is not the enrolment's "
                f"consent reference {wanted!r}",
            ))  # fmt: skip
    for subject, grant in sorted(grants.items()):
        if grant.status is ConsentStatus.GRANTED and subject not in enrolled:
            found.append(MissingStep(subject, "office gallery: consent granted, no face enrolled"))
    return found
