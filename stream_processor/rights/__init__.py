"""Residents' rights: signed erasure receipts, key cards on request, subject access export.

Erasure itself (request, progress, the worker) is ``stream_processor.erasure``.

    receipts.py       the erasure receipt: model, issuing (audit entry + signature), checking
    receipt_store.py  issued receipts, for ``facegate erasure receipt ID``
    db.py             the small SQLite database of rights requests
    keycards.py       key-card requests, their ages and metrics
    export.py         the subject access export document and its ports
    schemas.py        JSON Schemas of the documents, exported to docs/schema/

Errors::

    FacegateError
    └── KeycardError    a key-card request is invalid or not open
"""
