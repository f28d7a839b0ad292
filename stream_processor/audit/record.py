"""What each kind of audit entry says: typed helpers over ``AuditSink.append``.

Callers (the erasure flow, the consent ledger, the policy CLI, the retention
sweeper) use these instead of building bodies by hand, so every entry of a
type has the same shape and nothing identifying slips in. A subject is passed
as its pseudonym; the sink writes only a salted commitment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from stream_processor.audit.canonical import canonical, digest, sha256_hex
from stream_processor.audit.entries import EntryType
from stream_processor.audit.log import Appended, AuditSink


def erasure_requested(
    sink: AuditSink,
    *,
    request_id: str,
    tenant: str,
    site: str,
    subject: str,
    purposes: Sequence[str] | None,
    channel: str,
) -> Appended:
    """An erasure request was accepted (``channel``: office, web, court, …)."""
    return sink.append(
        EntryType.ERASURE_REQUESTED,
        tenant=tenant,
        site=site,
        subject=subject,
        body={
            "request_id": request_id,
            "scope": sorted(purposes) if purposes is not None else "all",
            "channel": channel,
        },
    )


def consent_changed(
    sink: AuditSink,
    *,
    tenant: str,
    site: str,
    subject: str,
    purpose: str | None,
    granted: bool,
    by_guardian: bool,
    evidence_ref: str | None = None,
    minor: bool = False,
    at_ms: int | None = None,
    source: str | None = None,
) -> Appended:
    """Consent granted or withdrawn. ``evidence_ref`` is stored only as a digest;
    ``at_ms`` is when the consent was given (the entry's own time is when it was
    logged); ``source`` names where the fact came from (topic/partition/offset)."""
    body: dict[str, object] = {
        "purpose": purpose if purpose is not None else "all",
        "action": "granted" if granted else "withdrawn",
        "by_guardian": by_guardian,
        "minor": minor,
        "evidence_digest": digest(evidence_ref) if evidence_ref is not None else None,
    }
    if at_ms is not None:
        body["given_at_ms"] = at_ms
    return _consent_entry(sink, tenant, site, subject, body, source)


def consent_record_removed(
    sink: AuditSink,
    *,
    tenant: str,
    site: str,
    subject: str,
    purpose: str | None,
    source: str | None = None,
) -> Appended:
    """A consent record was tombstoned (removed from the ledger, e.g. by an erasure)."""
    body: dict[str, object] = {
        "purpose": purpose if purpose is not None else "all",
        "action": "record_removed",
    }
    return _consent_entry(sink, tenant, site, subject, body, source)


def _consent_entry(
    sink: AuditSink,
    tenant: str,
    site: str,
    subject: str,
    body: dict[str, object],
    source: str | None,
) -> Appended:
    if source is not None:
        body["source"] = source
    return sink.append(
        EntryType.CONSENT_CHANGED, tenant=tenant, site=site, subject=subject, body=body
    )


def policy_version(
    sink: AuditSink,
    *,
    tenant: str,
    version: int,
    document: Mapping[str, object],
    applied_by: str,
    applied_at_ms: int | None = None,
    source: str | None = None,
) -> Appended:
    """A retention/purpose policy version came into force; the log keeps its digest."""
    body: dict[str, object] = {
        "version": version,
        # Canonical JSON of the document as applied (floats, if any, as Python writes them).
        "digest": sha256_hex(canonical(dict(document), check=False)),
        "applied_by": applied_by,
    }
    if applied_at_ms is not None:
        body["applied_at_ms"] = applied_at_ms
    if source is not None:
        body["source"] = source
    return sink.append(EntryType.POLICY_VERSION, tenant=tenant, site=None, body=body)


def retention_sweep(
    sink: AuditSink,
    *,
    tenant: str,
    site: str | None,
    deleted: Mapping[str, int],
    cutoff_ms: int,
    policy_version: int | None,
) -> Appended:
    """A sweep deleted expired rows: counts per event kind, never rows."""
    return sink.append(
        EntryType.RETENTION_SWEEP,
        tenant=tenant,
        site=site,
        body={
            "deleted": {k: int(v) for k, v in sorted(deleted.items())},
            "deleted_total": int(sum(deleted.values())),
            "cutoff_ms": cutoff_ms,
            "policy_version": policy_version,
        },
    )


def notice_version(
    sink: AuditSink, *, tenant: str, site: str, camera: str, version: int, content_digest: str
) -> Appended:
    """A camera notice changed (text or the retention it states)."""
    return sink.append(
        EntryType.NOTICE_VERSION,
        tenant=tenant,
        site=site,
        body={"camera": camera, "version": version, "digest": content_digest},
    )


def key_rotated(
    sink: AuditSink,
    *,
    old_key_id: str,
    new_key_id: str,
    reason: str,
    new_vkey: str | None = None,
) -> Appended:
    """The operator's signing key changed; both stay in the published key file.

    ``new_vkey``: the new key as a checkpoint verifier key, so a witness can
    accept checkpoints it signs once this entry is in a tree it verified."""
    body = {"old_key_id": old_key_id, "new_key_id": new_key_id, "reason": reason}
    if new_vkey is not None:
        body["new_vkey"] = new_vkey
    return sink.append(EntryType.KEY_ROTATED, tenant=None, site=None, body=body)


def retention_sweeps(
    sink: AuditSink,
    *,
    deleted: Mapping[tuple[str, str, str], int],
    swept_at_ms: int,
    policy_versions: Mapping[str, int],
) -> list[Appended]:
    """One ``retention_sweep`` entry per (tenant, site) that lost rows in a sweep.

    ``deleted`` is the sweeper's ``SweepReport.deleted`` ((tenant, site, kind) →
    rows); ``policy_versions`` the version in force per tenant. Call it where
    the sweep report is published (from the executor thread: it appends with fsync).
    """
    by_site: dict[tuple[str, str], dict[str, int]] = {}
    for (tenant, site, kind), n in deleted.items():
        if n:
            counts = by_site.setdefault((tenant, site), {})
            counts[kind] = counts.get(kind, 0) + n
    return [
        retention_sweep(
            sink,
            tenant=tenant,
            site=site,
            deleted=counts,
            cutoff_ms=swept_at_ms,
            policy_version=policy_versions.get(tenant),
        )
        for (tenant, site), counts in sorted(by_site.items())
    ]
