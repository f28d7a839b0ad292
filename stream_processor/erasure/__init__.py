"""Erasure end to end: a request on the erasure topic → every copy gone → a signed receipt.

    plan.py           pure: withdrawals, ledger keys to forget, the subject's share of the
                      aggregates, the erase command, when Kafka's last copies expire
    book.py           progress per request in SQLite (survives restarts)
    service.py        the steps (request, ack, tick, complete) behind small ports
    app.py            the Faust agents (erasure topic, device acks) and a timer
    kafka_configs.py  topic configs as the broker reports them
    wiring.py         the composition root of ``facegate erasure worker``

The state machine and the receipt are ``stream_processor.rights.erasure`` and
``stream_processor.rights.erasure_audit``; see docs/erasure.md.
"""
