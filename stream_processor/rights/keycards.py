"""Key cards on request: a resident who does not want face recognition gets a card.

Refusing face scanning must never lock anyone out, so a request is tracked
from the moment it is made until a card is handed over: open requests and
the age of the oldest are visible (``facegate keycard list``, the API) and
exported as metrics until fulfilled. A request may name the resident's
pseudonym (card-only registration of an enrolled resident: the erasure or
consent flow then removes the face template) or only a unit and a contact.

The request and its field checks are in ``keycard_model``, the metrics (read from the
database at scrape time) in ``keycard_metrics``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace

from stream_processor.audit.entries import EntryType
from stream_processor.audit.log import AuditSink
from stream_processor.rights.db_port import RightsDb
from stream_processor.rights.keycard_metrics import register_keycard_metrics
from stream_processor.rights.keycard_model import (
    CANCEL_REASONS,
    CARD_DIGEST,
    CHANNELS,
    COLUMNS,
    ID,
    PSEUDONYM,
    KeycardError,
    KeycardRequest,
    KeycardStatus,
    OpenSummary,
    clean_text,
    read_row,
)


class KeycardBook:
    """Key-card requests over the rights database."""

    def __init__(
        self,
        db: RightsDb,
        audit: AuditSink | None = None,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] | None = None,
        on_fulfilled: Callable[[KeycardRequest], None] | None = None,
    ) -> None:
        """``on_fulfilled`` carries out the handing over of a card to an enrolled resident
        (``subject`` set): withdraw the face consent and register the card (its keyed
        hash, ``card_ref``) on the site's gates (``rights.keycard_fulfil``). It runs
        *before* the request is marked fulfilled: if it fails, nothing changed."""
        self._db = db
        self._audit = audit
        self._clock = clock
        self._on_fulfilled = on_fulfilled
        if new_id is None:
            from edge_agent.wire import new_event_id

            new_id = new_event_id
        self._new_id = new_id

    @property
    def db(self) -> RightsDb:
        return self._db

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def request(
        self,
        tenant: str,
        site: str,
        *,
        channel: str,
        unit: str | None = None,
        contact: str | None = None,
        subject: str | None = None,
        card_only: bool = True,
    ) -> KeycardRequest:
        """Open a request. ``subject`` is the pseudonym of an enrolled resident, if known."""
        if not ID.fullmatch(tenant) or not ID.fullmatch(site):
            raise KeycardError("tenant and site must be lower-case ids")
        if channel not in CHANNELS:
            raise KeycardError(f"channel must be one of {sorted(CHANNELS)}")
        if subject is not None and not PSEUDONYM.fullmatch(subject):
            raise KeycardError("subject must be a ps1_ pseudonym (never a resident id)")
        unit = clean_text(unit, "unit", 40)
        contact = clean_text(contact, "contact")
        if unit is None and contact is None and subject is None:
            raise KeycardError("say whom the card is for: a unit, a contact or a subject")
        req = KeycardRequest(
            id=self._new_id(),
            tenant=tenant,
            site=site,
            status=KeycardStatus.OPEN,
            channel=channel,
            card_only=card_only,
            unit=unit,
            contact=contact,
            subject=subject,
            requested_at_ms=self._now_ms(),
            closed_at_ms=None,
            card_ref=None,
            note=None,
        )
        self._db.execute(
            f"INSERT INTO keycard_requests ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",  # noqa: S608
            (
                req.id,
                req.tenant,
                req.site,
                req.status.value,
                req.channel,
                int(req.card_only),
                req.unit,
                req.contact,
                req.subject,
                req.requested_at_ms,
                None,
                None,
                None,
            ),
        )
        if self._audit is not None:
            self._audit.append(
                EntryType.KEYCARD_REQUESTED,
                tenant=tenant,
                site=site,
                subject=subject,
                body={"request_id": req.id, "channel": channel, "card_only": card_only},
            )
        return req

    def get(self, request_id: str) -> KeycardRequest:
        r = self._db.execute(
            f"SELECT {COLUMNS} FROM keycard_requests WHERE id = ?",  # noqa: S608
            (request_id,),
        ).fetchone()
        if r is None:
            raise KeycardError(f"no key-card request {request_id}")
        return read_row(r)

    def _close(
        self,
        request_id: str,
        status: KeycardStatus,
        card_ref: str | None,
        note: str | None,
        reason: str | None = None,
    ) -> KeycardRequest:
        now = self._now_ms()
        cur = self._db.execute(
            "UPDATE keycard_requests SET status = ?, closed_at_ms = ?, card_ref = ?, note = ? "
            "WHERE id = ? AND status = 'open'",
            (status.value, now, card_ref, note, request_id),
        )
        if cur.rowcount != 1:
            current = self.get(request_id)
            raise KeycardError(f"request {request_id} is {current.status.value}, not open")
        req = self.get(request_id)
        if self._audit is not None and status is KeycardStatus.FULFILLED:
            carried_out = req.subject is not None  # fulfil() refuses it without the hook
            self._audit.append(
                EntryType.KEYCARD_FULFILLED,
                tenant=req.tenant,
                site=req.site,
                subject=req.subject,
                body={
                    "request_id": req.id,
                    "waited_s": int(req.age_s(now)),
                    # The record says what handing over the card did at the gates.
                    "face_consent_withdrawn": carried_out,
                    "card_registered_on_gates": carried_out,
                },
            )
        if self._audit is not None and status is KeycardStatus.CANCELLED:
            self._audit.append(
                EntryType.KEYCARD_CANCELLED,
                tenant=req.tenant,
                site=req.site,
                subject=req.subject,
                body={"request_id": req.id, "reason": reason, "waited_s": int(req.age_s(now))},
            )
        return req

    def fulfil(self, request_id: str, card_ref: str | None = None) -> KeycardRequest:
        """A card was handed over. ``card_ref``: for an enrolled resident, the card's keyed
        hash (``keycard_fulfil.card_digest``), registered on the gates; otherwise the card's
        reference in the access system."""
        card = clean_text(card_ref, "card")
        before = self.get(request_id)
        if before.status is not KeycardStatus.OPEN:
            raise KeycardError(f"request {request_id} is {before.status.value}, not open")
        if before.subject is not None:
            if self._on_fulfilled is None:
                raise KeycardError(
                    "the request names an enrolled resident: fulfil it at the office"
                    " (facegate keycard fulfil --card N --site-secret FILE), which withdraws"
                    " the face consent and registers the card on the gates"
                )
            if card is None or not CARD_DIGEST.fullmatch(card):
                raise KeycardError(
                    "the resident is enrolled: the card is registered on the gates, so give"
                    " its number with the site secret (stored only as a keyed hash)"
                )
            self._on_fulfilled(replace(before, card_ref=card))
        return self._close(request_id, KeycardStatus.FULFILLED, card, None)

    def cancel(
        self, request_id: str, note: str, reason: str = "resident_withdrew"
    ) -> KeycardRequest:
        """Closed without a card (never by the operator's choice alone: say why). The
        audit entry records ``reason`` (one of ``CANCEL_REASONS``); the note stays here."""
        if reason not in CANCEL_REASONS:
            raise KeycardError(f"reason must be one of {', '.join(CANCEL_REASONS)}")
        cleaned = clean_text(note, "note")
        return self._close(request_id, KeycardStatus.CANCELLED, None, cleaned, reason)

    def forget_subject(self, tenant: str, site: str, subject: str) -> int:
        """Erasure: no request keeps the subject's pseudonym (times and status stay, so
        waiting times remain checkable). Returns how many requests named them."""
        cur = self._db.execute(
            "UPDATE keycard_requests SET subject = NULL "
            "WHERE tenant = ? AND site = ? AND subject = ?",
            (tenant, site, subject),
        )
        return cur.rowcount

    def scrub_closed(self, older_than_s: float) -> int:
        """Forget unit and contact of requests closed more than ``older_than_s`` ago.

        They were needed to hand over the card; the request itself (times,
        status) stays, so counts and waiting times remain checkable.
        """
        cutoff = self._now_ms() - int(older_than_s * 1000)
        cur = self._db.execute(
            "UPDATE keycard_requests SET unit = NULL, contact = NULL "
            "WHERE status != 'open' AND closed_at_ms < ? "
            "AND (unit IS NOT NULL OR contact IS NOT NULL)",
            (cutoff,),
        )
        return cur.rowcount

    def find(
        self,
        status: KeycardStatus | None = None,
        tenant: str | None = None,
        site: str | None = None,
    ) -> list[KeycardRequest]:
        sql = f"SELECT {COLUMNS} FROM keycard_requests WHERE 1=1"  # noqa: S608
        args: list[object] = []
        for column, value in (("status", status), ("tenant", tenant), ("site", site)):
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value.value if isinstance(value, KeycardStatus) else value)
        rows = self._db.execute(sql + " ORDER BY requested_at_ms", args).fetchall()
        return [read_row(r) for r in rows]

    def for_subject(self, subject: str) -> list[KeycardRequest]:
        rows = self._db.execute(
            f"SELECT {COLUMNS} FROM keycard_requests WHERE subject = ? "  # noqa: S608
            "ORDER BY requested_at_ms",
            (subject,),
        ).fetchall()
        return [read_row(r) for r in rows]

    def open_summary(self) -> list[OpenSummary]:
        now = self._now_ms()
        rows = self._db.execute(
            "SELECT tenant, site, COUNT(*), MIN(requested_at_ms) FROM keycard_requests "
            "WHERE status = 'open' GROUP BY tenant, site ORDER BY tenant, site"
        ).fetchall()
        return [
            OpenSummary(t, s, int(n), max(0.0, (now - int(oldest)) / 1000))
            for t, s, n, oldest in rows
        ]

    def totals(self) -> Iterator[tuple[str, str, int, int]]:
        """(tenant, site, requested, fulfilled) over all time."""
        rows = self._db.execute(
            "SELECT tenant, site, COUNT(*), SUM(CASE WHEN status = 'fulfilled' THEN 1 ELSE 0 END) "
            "FROM keycard_requests "
            "GROUP BY tenant, site ORDER BY tenant, site"
        ).fetchall()
        for t, s, n, f in rows:
            yield str(t), str(s), int(n), int(f or 0)


# The request's names and the metrics: re-exported for the CLI, web and tests.
__all__ = [
    "KeycardBook",
    "KeycardError",
    "KeycardRequest",
    "KeycardStatus",
    "register_keycard_metrics",
]
