"""Signed erasure receipts.

A receipt states what was erased for whom (request id, subject pseudonym,
scope, deletions with counts per place, the devices that acknowledged, what
remains in Kafka and until when, timestamps) and where the erasure sits in
the audit log (position, hash, and the salt that opens the entry's subject
commitment). The operator signs it with the Ed25519 key that signs the
checkpoints. The audit entry carries the SHA-256 of the receipt's claims, so
the receipt and the published log vouch for each other:

    facegate audit verify --receipt receipt.json

Issue with ``issue_receipt`` once every part of the erasure has completed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from stream_processor.audit.canonical import canonical, digest
from stream_processor.audit.entries import EntryType
from stream_processor.audit.keys import Keyring, OperatorKey, PublicKey
from stream_processor.audit.log import AuditSink, Once
from stream_processor.audit.openings import Openings
from stream_processor.audit.verify import AnchorCheck
from stream_processor.rights.receipt_parts import (
    FORMAT,
    HEX64,
    ID,
    PSEUDONYM,
    UUID7,
    Deletion,
    DeviceAck,
    DeviceWaiver,
    ErasureScope,
    KafkaCopy,
    ReceiptModel,
    Remnant,
)


class ReceiptClaims(ReceiptModel):
    """What the operator states was done."""

    format: Literal["facegate.erasure-receipt/1"] = Field(description="document format")
    request_id: str = Field(pattern=UUID7, description="the erasure request")
    tenant: str = Field(pattern=ID, description="the property firm")
    site: str = Field(pattern=ID, description="the site (compound)")
    subject: str = Field(pattern=PSEUDONYM, description="the subject's per-site pseudonym")
    scope: ErasureScope = Field(description="what the request covered")
    deletions: list[Deletion] = Field(description="what was deleted where, with counts")
    devices: list[DeviceAck] = Field(description="gate devices that acknowledged the erasure")
    kafka: list[KafkaCopy] = Field(
        default_factory=list, description="log topics whose last copy expires later"
    )
    waived: list[DeviceWaiver] = Field(
        default_factory=list, description="devices released without acknowledging, and why"
    )
    remaining: list[Remnant] = Field(
        default_factory=list, description="every place a copy may remain, and until when"
    )
    requested_at_ms: int = Field(description="when the request was accepted (epoch ms)")
    completed_at_ms: int = Field(description="when the last part completed (epoch ms)")

    @model_serializer(mode="wrap")
    def _without_empty_additions(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Receipts issued before ``waived``/``remaining`` existed keep their digest and
        # signature: an empty addition is left out of the serialised claims.
        doc = handler(self)
        for name in ("waived", "remaining"):
            if isinstance(doc, dict) and not doc.get(name):
                doc.pop(name, None)
        return doc

    def digest(self) -> str:
        return digest(self.model_dump(mode="json"))


class AuditAnchor(ReceiptModel):
    log_id: str = Field(description="the audit log this receipt is in")
    seq: int = Field(ge=0, description="position of the erasure_completed entry")
    hash: str = Field(pattern=HEX64, description="that entry's hash")
    salt: str = Field(pattern=HEX64, description="opens the entry's subject commitment")


class Opening(ReceiptModel):
    seq: int = Field(ge=0, description="an earlier entry about the same subject")
    salt: str = Field(pattern=HEX64, description="opens its subject commitment")


class WitnessedProof(ReceiptModel):
    """Proof that the erasure is in a checkpoint third parties cosigned: checkable
    with the receipt alone (no log), and outside the operator's signature."""

    index: int = Field(ge=0, description="the entry's position in the Merkle tree (= seq)")
    entry: str = Field(description="the erasure_completed entry: its exact line in the log")
    checkpoint: str = Field(
        description="C2SP checkpoint covering the entry: operator signature and cosignatures"
    )
    inclusion: list[str] = Field(description="RFC 6962 inclusion proof, base64 hashes")


class ErasureReceipt(ReceiptModel):
    claims: ReceiptClaims = Field(description="what was erased")
    audit: AuditAnchor = Field(description="where the erasure is in the audit log")
    openings: list[Opening] = Field(
        default_factory=list,
        description="earlier entries about the subject (consent, request), for the holder",
    )
    key_id: str = Field(description="the operator key that signed (see audit public-key)")
    signature: str = Field(
        description="Ed25519 over the canonical JSON of all other fields but witnessed"
    )
    witnessed: WitnessedProof | None = Field(
        None, description="inclusion in a cosigned checkpoint (added once witnesses cosigned)"
    )

    def signed_bytes(self) -> bytes:
        doc = self.model_dump(mode="json", exclude={"witnessed"})
        doc.pop("signature")
        return canonical(doc)

    def to_json(self) -> str:
        skip = {"witnessed"} if self.witnessed is None else set()
        return canonical(self.model_dump(mode="json", exclude=skip)).decode("utf-8")

    @classmethod
    def load(cls, path: Path) -> ErasureReceipt:
        return cls.model_validate_json(path.read_bytes())


#: Kafka's default ``log.retention.check.interval.ms``.
RETENTION_CHECK_INTERVAL_MS = 300_000


def last_copy_gone_by(
    last_write_ms: int,
    retention_ms: int,
    segment_ms: int,
    check_interval_ms: int = RETENTION_CHECK_INTERVAL_MS,
) -> int:
    """When Kafka has deleted the last copy of a record written at ``last_write_ms``
    to a topic with ``cleanup.policy=delete``: a segment is deleted whole, once
    its newest record is older than ``retention.ms``; it rolls after at most
    ``segment.ms``; the cleaner looks every ``check_interval_ms``."""
    return last_write_ms + segment_ms + retention_ms + check_interval_ms


def completion_body(claims: ReceiptClaims) -> dict[str, Any]:
    """The erasure_completed entry's body: a digest of the claims and bare counts."""
    return {
        "request_id": claims.request_id,
        "claims_digest": claims.digest(),
        "deleted_total": sum(d.count for d in claims.deletions),
        "devices_acked": len(claims.devices),
        "scope": sorted(claims.scope.purposes) if claims.scope.purposes is not None else "all",
    }


def completion_once(request_id: str, salt: str | None) -> Once:
    """What makes an erasure's completion entry one per request (``audit.log.Once``)."""
    return Once(key=f"erasure_completed:{request_id}", salt=salt)


def issue_receipt(
    claims: ReceiptClaims,
    *,
    sink: AuditSink,
    key: OperatorKey,
    log_id: str,
    openings: Openings | None = None,
    forget_openings: bool = True,
    salt: str | None = None,
) -> ErasureReceipt:
    """Append the erasure_completed entry and sign the receipt.

    Earlier entries about the subject found in ``openings`` go into the
    receipt; with ``forget_openings`` (default) the operator's index then
    forgets them, so afterwards only the receipt holder can link the log to
    the subject.

    The completion entry is logged once per request id: a retry with the same claims
    and ``salt`` (pinned by ``ReceiptStore.pin``) returns the entry already logged.
    """
    prior = openings.for_subject(claims.subject) if openings is not None else []
    appended = sink.append(
        EntryType.ERASURE_COMPLETED,
        tenant=claims.tenant,
        site=claims.site,
        subject=claims.subject,
        body=completion_body(claims),
        once=completion_once(claims.request_id, salt),
    )
    assert appended.salt is not None
    unsigned = ErasureReceipt(
        claims=claims,
        audit=AuditAnchor(
            log_id=log_id, seq=appended.entry.seq, hash=appended.entry.hash, salt=appended.salt
        ),
        openings=[Opening(seq=o.seq, salt=o.salt) for o in prior],
        key_id=key.key_id,
        signature="",
    )
    receipt = unsigned.model_copy(update={"signature": key.sign(unsigned.signed_bytes())})
    if openings is not None and forget_openings:
        openings.forget(claims.subject)
    return receipt


def check_signature(receipt: ErasureReceipt, keys: PublicKey | Keyring) -> list[str]:
    """Problems with the receipt's own signature; empty when it verifies."""
    ring = Keyring.of(keys)
    public = ring.get(receipt.key_id)
    if public is None:
        return [f"signed by key {receipt.key_id}, not by an operator key {ring.key_ids}"]
    if not public.verify(receipt.signature, receipt.signed_bytes()):
        return ["the signature does not verify: the receipt was altered or forged"]
    return []


def receipt_anchors(receipt: ErasureReceipt) -> list[AnchorCheck]:
    """What the log must contain for the receipt to hold."""
    claims = receipt.claims
    anchors = [
        AnchorCheck(
            label=f"receipt {claims.request_id}",
            seq=receipt.audit.seq,
            pseudonym=claims.subject,
            salt=receipt.audit.salt,
            hash=receipt.audit.hash,
            type=EntryType.ERASURE_COMPLETED,
            body={"request_id": claims.request_id, "claims_digest": claims.digest()},
            log_id=receipt.audit.log_id,
        )
    ]
    anchors.extend(
        AnchorCheck(
            label=f"receipt {claims.request_id} opening",
            seq=o.seq,
            pseudonym=claims.subject,
            salt=o.salt,
        )
        for o in receipt.openings
    )
    return anchors


__all__ = [
    "FORMAT",
    "AuditAnchor",
    "Deletion",
    "DeviceAck",
    "DeviceWaiver",
    "ErasureReceipt",
    "ErasureScope",
    "KafkaCopy",
    "Opening",
    "ReceiptClaims",
    "Remnant",
    "WitnessedProof",
    "check_signature",
    "completion_body",
    "issue_receipt",
    "last_copy_gone_by",
    "receipt_anchors",
]
