"""One witness round: fetch the log's checkpoint, verify it, decide, cosign or state a fork.

The operator's signature is checked against the configured log keys and any
key the witness learned from a logged rotation: a ``key_rotated`` entry that
names the new key (``new_vkey``), is included in the offered tree (inclusion
proof) and whose tree extends the cosigned one. A rotation is thus never
silent: it is an entry of the log, and the witness cosigns the checkpoint
that contains it. A cosignature is posted back to the log (``POST
/audit/cosignature``); a fork statement stays with the witness and is served
from its own ``/fork-statements``, out of the operator's reach.
"""

from __future__ import annotations

import enum
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from stream_processor.audit.entries import EntryType, decode_entry
from stream_processor.audit.merkle import leaf_hash, verify_inclusion
from stream_processor.audit.note import (
    COSIGNATURE_V1,
    ED25519,
    Note,
    NoteError,
    Signer,
    Verifier,
    valid_signatures,
)
from stream_processor.audit.tlog import TreeHead
from stream_processor.witness.client import LogClient, LogUnavailable
from stream_processor.witness.decide import Outcome, decide, fork_statement
from stream_processor.witness.state import Head, WitnessState

log = logging.getLogger(__name__)


class Result(enum.StrEnum):
    COSIGNED = "cosigned"
    FORK = "fork"
    UNTRUSTED = "untrusted"
    UNAVAILABLE = "unavailable"
    RACED = "raced"


@dataclass(frozen=True)
class Round:
    result: Result
    size: int | None
    reason: str


class WitnessMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.fork = Gauge(
            "facegate_witness_fork_detected",
            "1 once the witness saw a log sign two views that cannot both be true",
            registry=registry,
        )
        self.rounds = Counter(
            "facegate_witness_rounds_total",
            "witness rounds by result",
            ["result"],
            registry=registry,
        )
        self.size = Gauge(
            "facegate_witness_cosigned_tree_size",
            "tree size of the last checkpoint the witness cosigned",
            registry=registry,
        )


class WitnessService:
    def __init__(
        self,
        *,
        name: str,
        key: Ed25519PrivateKey,
        state: WitnessState,
        client: LogClient,
        log_keys: list[Verifier],
        metrics: WitnessMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.signer = Signer(name, key, COSIGNATURE_V1, clock)
        self._key = key
        self.state = state
        self._client = client
        self._log_keys = log_keys
        self._metrics = metrics or WitnessMetrics(CollectorRegistry())
        self._clock = clock
        if self.state.fork_statements():
            self._metrics.fork.set(1)

    @property
    def vkey(self) -> str:
        return self.signer.verifier.vkey()

    def trusted(self, origin: str) -> list[Verifier]:
        """The log keys this witness accepts for ``origin``: configured, or learned."""
        learned = [Verifier.parse(k) for k in self.state.learned_keys(origin)]
        return [v for v in (*self._log_keys, *learned) if v.name == origin]

    def cosigned(self, size: int) -> None:
        """Count a cosignature given through the push face (a pull round counts its own)."""
        self._metrics.size.set(size)
        self._metrics.rounds.labels(Result.COSIGNED.value).inc()

    def run_once(self) -> Round:
        out = self._round()
        self._metrics.rounds.labels(out.result.value).inc()
        log.info("witness round: %s (size %s): %s", out.result, out.size, out.reason)
        return out

    def _round(self) -> Round:
        try:
            raw = self._client.checkpoint()
            note = Note.parse(raw)
            head = TreeHead.parse(note.text)
        except (LogUnavailable, NoteError, UnicodeDecodeError) as exc:
            return Round(Result.UNAVAILABLE, None, str(exc))
        learned: tuple[Verifier, int] | None = None
        if not valid_signatures(note, self.trusted(head.origin)):
            try:
                learned = self._rotation_for(note, head)
            except LogUnavailable as exc:
                return Round(Result.UNAVAILABLE, head.size, str(exc))
            if learned is None:
                return Round(Result.UNTRUSTED, head.size, "not signed by a key of this log")
        last = self.state.head(head.origin)
        last_head = TreeHead.parse(Note.parse(last.note).text) if last else None
        proof: list[bytes] | None = None
        if last is not None and head.size > last.size:
            try:
                proof = self._client.consistency(last.size, head.size)
            except LogUnavailable as exc:
                return Round(Result.UNAVAILABLE, head.size, f"no consistency proof: {exc}")
        decision = decide(last_head, head, proof)
        if decision.outcome == Outcome.FORK:
            assert last is not None
            self.state_fork(head.origin, decision.reason, last.note, raw.decode(), proof)
            return Round(Result.FORK, head.size, decision.reason)
        return self._cosign(note, head, last, learned, decision.reason)

    def _cosign(
        self,
        note: Note,
        head: TreeHead,
        last: Head | None,
        learned: tuple[Verifier, int] | None,
        reason: str,
    ) -> Round:
        operator_only = Note(note.text, tuple(s for s in note.signatures if s.name == head.origin))
        if not self.state.advance(
            head.origin, last, Head(head.size, head.root, operator_only.encode().decode())
        ):
            return Round(Result.RACED, head.size, "another round moved the head; try again")
        if learned is not None:
            self.state.learn_key(head.origin, learned[0].vkey(), learned[1])
            reason += f"; learned the rotated key of entry {learned[1]}"
        self._metrics.size.set(head.size)
        cosigned = Note(note.text, (self.signer.sign(note.text),))
        try:
            self._client.post_cosignature(cosigned.encode())
        except LogUnavailable as exc:  # cosigned all the same: the next round posts again
            reason += f"; posting it back failed: {exc}"
        return Round(Result.COSIGNED, head.size, reason)

    def _rotation_for(self, note: Note, head: TreeHead) -> tuple[Verifier, int] | None:
        """A logged key rotation, included in the offered tree, whose key signed it."""
        for index, line in self._client.rotations():
            if index >= head.size:
                continue
            try:
                entry = decode_entry(line.encode())
                verifier = Verifier.parse(str(entry.body.get("new_vkey", "")))
            except (ValueError, NoteError):
                continue
            if (
                entry.type != EntryType.KEY_ROTATED
                or verifier.kind != ED25519
                or verifier.name != head.origin
                or not valid_signatures(note, [verifier])
            ):
                continue
            proof = self._client.inclusion(index, head.size)
            if verify_inclusion(leaf_hash(line.encode()), index, head.size, proof, head.root):
                return verifier, index
        return None

    def state_fork(
        self, origin: str, reason: str, cosigned: str, offered: str, proof: list[bytes] | None
    ) -> None:
        self._metrics.fork.set(1)
        if any(
            json.loads(s)["offered_checkpoint"] == offered for s in self.state.fork_statements()
        ):
            return  # already stated
        statement = fork_statement(
            key=self._key,
            witness=self.signer.name,
            origin=origin,
            reason=reason,
            cosigned=cosigned,
            offered=offered,
            proof=proof,
            at=int(self._clock()),
        )
        self.state.add_fork_statement(origin, statement)
        log.error("FORK of log %s: %s", origin, reason)
