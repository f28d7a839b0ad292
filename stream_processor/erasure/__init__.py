"""Erasure end to end: a request on the erasure topic → every copy gone → a signed receipt.

    progress.py       pure: the request, and its progress as a state machine
                      (pending → complete → the receipt's claims)
    plan.py           pure: withdrawals, ledger keys to forget, the subject's share of the
                      aggregates, the erase command, when Kafka's last copies expire
    audit.py          the two calls that put an erasure on the record: requested, completed
    book.py           progress per request in SQLite (survives restarts)
    service.py        the steps (request, ack, tick, complete) behind small ports
    app.py            the Faust agents (erasure topic, device acks) and a timer
    kafka_configs.py  topic configs as the broker reports them
    ledger_index.py   the consent ledger's live keys, followed incrementally
    metrics.py        the worker's Prometheus metrics
    settings.py       ``FACEGATE_ERASURE_*``
    wiring.py         the composition root of ``facegate erasure worker``

The receipt itself (model, signature, checking) is a resident's document and lives in
``stream_processor.rights.receipts``; see docs/erasure.md.
"""
