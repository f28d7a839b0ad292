"""What the erasure flow calls: two steps that put an erasure on the record.

    ea = ErasureAudit(audit.log, audit.key, audit.settings.log_id, audit.openings,
                      ReceiptStore(db), audit.checkpointer(publisher))
    ea.requested(request_id=…, tenant=…, site=…, subject=…, purposes=None, channel="office")
    …                                    # delete, tombstone, command devices, wait for acks
    receipt = ea.completed(claims)       # entry + signed receipt + stored + checkpoint

Both are synchronous (file append with fsync, SQLite, a Kafka send); from a
Faust agent call them through ``await asyncio.to_thread(...)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from stream_processor.audit import record
from stream_processor.audit.checkpoint import Checkpointer
from stream_processor.audit.keys import OperatorKey
from stream_processor.audit.log import AuditSink
from stream_processor.audit.openings import Openings
from stream_processor.errors import BrokerError, FacegateError
from stream_processor.rights.receipt_store import ReceiptStore
from stream_processor.rights.receipts import ErasureReceipt, ReceiptClaims, issue_receipt

log = logging.getLogger(__name__)


class ErasureAudit:
    def __init__(
        self,
        sink: AuditSink,
        key: OperatorKey,
        log_id: str,
        openings: Openings | None,
        receipts: ReceiptStore,
        checkpointer: Checkpointer | None = None,
        witness: Callable[[ErasureReceipt], ErasureReceipt | None] | None = None,
    ) -> None:
        self._sink = sink
        self._key = key
        self._log_id = log_id
        self._openings = openings
        self._receipts = receipts
        self._checkpointer = checkpointer
        #: Asks the witnesses to cosign and returns the receipt with its witnessed proof.
        self._witness = witness

    def requested(
        self,
        *,
        request_id: str,
        tenant: str,
        site: str,
        subject: str,
        purposes: Sequence[str] | None,
        channel: str,
    ) -> None:
        """Record that an erasure request was accepted (before any work starts)."""
        record.erasure_requested(
            self._sink,
            request_id=request_id,
            tenant=tenant,
            site=site,
            subject=subject,
            purposes=purposes,
            channel=channel,
        )

    def completed(self, claims: ReceiptClaims) -> ErasureReceipt:
        """Record the completion, sign and keep the receipt, and sign a checkpoint now.

        Idempotent per request id: a repeated call (a redelivered message)
        returns the receipt already issued instead of logging twice. A failed
        checkpoint publish is logged, not raised: the receipt is valid, and the
        checkpointer publishes the pending checkpoint on its next round.
        """
        existing = self._receipts.get(claims.request_id)
        if existing is not None:
            return existing
        claims, salt = self._receipts.pin(claims)  # a retry logs the first attempt's
        receipt = issue_receipt(claims, sink=self._sink, key=self._key, log_id=self._log_id,
                                openings=self._openings, salt=salt)  # fmt: skip
        self._receipts.save(receipt)
        if self._checkpointer is not None:
            try:
                self._checkpointer.checkpoint()
            except BrokerError as exc:
                log.warning("erasure %s: checkpoint not published yet: %s", claims.request_id, exc)
        if self._witness is not None:
            try:
                proved = self._witness(receipt)
            except FacegateError as exc:  # the receipt stands; a later checkpoint adds the proof
                log.warning("erasure %s: not witnessed yet: %s", claims.request_id, exc)
                proved = None
            if proved is not None:
                self._receipts.save(proved)
                receipt = proved
        return receipt
