"""What a witness does with a checkpoint it verified the signature of: a pure function.

    no head yet                          → cosign (trust on first use, as every witness)
    same size, same root                 → cosign again (nothing changed)
    bigger, consistency proof verifies   → cosign
    same size with another root,
    bigger without a valid proof,
    smaller than what it cosigned        → fork: refuse, and state it, signed

A fork statement holds both operator-signed checkpoints (the one cosigned and
the one offered) and the proof the log gave, so anyone can check the
operator signed two views of its log that cannot both be true.
"""

from __future__ import annotations

import base64
import enum
import json
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from stream_processor.audit.merkle import verify_consistency
from stream_processor.audit.tlog import TreeHead

FORK_FORMAT = "facegate.fork-statement/1"


class Outcome(enum.StrEnum):
    COSIGN = "cosign"
    FORK = "fork"


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str


def decide(last: TreeHead | None, offered: TreeHead, proof: list[bytes] | None) -> Decision:
    """``proof``: the consistency proof from ``last.size`` to ``offered.size`` (None: none)."""
    if last is None:
        return Decision(Outcome.COSIGN, "first checkpoint seen of this log")
    if offered.size < last.size:
        return Decision(
            Outcome.FORK, f"rollback: size {offered.size} after cosigning size {last.size}"
        )
    if offered.size == last.size:
        if offered.root == last.root:
            return Decision(Outcome.COSIGN, "unchanged")
        return Decision(Outcome.FORK, f"two different roots for size {last.size}")
    if proof is None:
        return Decision(Outcome.FORK, "the log gave no consistency proof")
    if not verify_consistency(last.size, offered.size, last.root, offered.root, proof):
        return Decision(
            Outcome.FORK,
            f"size {offered.size} does not extend the cosigned size {last.size} "
            "(the consistency proof fails: entries were changed or dropped)",
        )
    return Decision(Outcome.COSIGN, f"extends size {last.size}")


def _canonical(doc: dict[str, object]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def fork_statement(
    *,
    key: Ed25519PrivateKey,
    witness: str,
    origin: str,
    reason: str,
    cosigned: str,
    offered: str,
    proof: list[bytes] | None,
    at: int,
) -> str:
    """The signed statement (canonical JSON; ``signature`` is Ed25519 over the rest)."""
    doc: dict[str, object] = {
        "format": FORK_FORMAT,
        "witness": witness,
        "origin": origin,
        "detected_at": at,
        "reason": reason,
        "cosigned_checkpoint": cosigned,
        "offered_checkpoint": offered,
        "consistency_proof": [base64.b64encode(p).decode() for p in proof or []],
    }
    doc["signature"] = base64.b64encode(key.sign(_canonical(doc))).decode()
    return _canonical(doc).decode()


def fork_statement_valid(statement: str, public: Ed25519PublicKey) -> bool:
    doc = json.loads(statement)
    if not isinstance(doc, dict) or doc.get("format") != FORK_FORMAT:
        return False
    sig = base64.b64decode(str(doc.pop("signature", "")))
    try:
        public.verify(sig, _canonical(doc))
    except InvalidSignature:
        return False
    return True
