"""The witness: a third party that cosigns the operator's audit checkpoints only when
each extends the last one it cosigned, and publishes a signed fork statement when not.

    settings.py   FACEGATE_WITNESS_* (its name, state dir, the log it watches, keys)
    state.py      its Ed25519 key and its SQLite state (heads, learned keys, fork statements)
    decide.py     the pure decision: cosign, stale, or fork — from verified inputs
    client.py     the LogClient port and its HTTP implementation (the operator's web app)
    service.py    one round: fetch, verify, decide, cosign or publish a fork statement
    push.py       the same rules behind C2SP tlog-witness (POST /add-checkpoint)
    http.py       the witness's own HTTP face: /metrics, /fork-statements, /checkpoint,
                  /add-checkpoint
"""
