"""Residents' rights: signed erasure receipts, key cards on request, subject access export.

receipts.py   the erasure receipt: model, issuing (audit entry + signature), verifying
db.py         the small SQLite database of rights requests (key cards, receipts)
keycards.py   key-card requests, their ages and metrics
export.py     the subject access export document
"""
