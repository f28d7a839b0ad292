"""Witnessed receipts: attach the inclusion proof and the cosigned checkpoint, and check
them from the receipt alone (paper, QR code, /receipt page, ``audit verify``).

The check needs the operator's public key(s) and the witnesses' verifier keys,
nothing else: the entry's line is in the receipt, hashes to the anchor,
carries the claims' digest and opens to the subject; the inclusion proof
leads from it to the checkpoint's root; the checkpoint is signed by the
operator and cosigned by the witnesses.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field

from stream_processor.audit.commitment import opens
from stream_processor.audit.entries import EntryType, decode_entry
from stream_processor.audit.keys import Keyring, PublicKey
from stream_processor.audit.merkle import leaf_hash, verify_inclusion
from stream_processor.audit.note import Note, NoteError, Verifier, valid_signatures
from stream_processor.audit.tlog import CheckpointStore, TreeHead
from stream_processor.audit.tree import StoredTree
from stream_processor.audit.wiring import Audit
from stream_processor.audit.witnessed import operator_verifiers
from stream_processor.rights.receipt_store import ReceiptStore
from stream_processor.rights.receipts import ErasureReceipt, WitnessedProof


def witnessed_note(
    store: CheckpointStore, witnesses: list[Verifier], require: int = 1, above: int = -1
) -> Note | None:
    """The largest checkpoint with more than ``above`` entries and ``require`` valid
    cosignatures from ``witnesses``."""
    for size in store.cosigned_sizes(above):
        note = store.get(size)
        if note is not None and len(valid_signatures(note, witnesses)) >= require:
            return note
    return None


def prove(receipt: ErasureReceipt, note: Note, tree: StoredTree) -> ErasureReceipt:
    """The receipt with its inclusion proof in the tree ``note`` signs (size > its seq)."""
    head = TreeHead.parse(note.text)
    index = receipt.audit.seq
    if index >= head.size:
        raise ValueError(f"checkpoint of size {head.size} does not cover entry {index}")
    if tree.size < head.size:
        tree.sync()
    proof = WitnessedProof(
        index=index,
        entry=tree.line(index).decode("utf-8"),
        checkpoint=note.encode().decode(),
        inclusion=[base64.b64encode(p).decode() for p in tree.inclusion(index, head.size)],
    )
    return receipt.model_copy(update={"witnessed": proof})


def attach_proof(
    receipt: ErasureReceipt,
    tree: StoredTree,
    store: CheckpointStore,
    witnesses: list[Verifier],
    require: int = 1,
) -> ErasureReceipt | None:
    """The receipt with its proof against the newest checkpoint that covers it and has
    ``require`` cosignatures from ``witnesses``; None while there is none yet."""
    note = witnessed_note(store, witnesses, require, above=receipt.audit.seq)
    return None if note is None else prove(receipt, note, tree)


def witness_stored(
    receipts: ReceiptStore,
    tree: StoredTree,
    store: CheckpointStore,
    witnesses: list[Verifier],
    require: int = 1,
) -> int:
    """Give every kept receipt that a cosigned checkpoint now covers its witnessed proof
    (``facegate erasure receipt ID`` then hands out the witnessed one); returns how many."""
    pending = receipts.unwitnessed() if witnesses else []
    note = witnessed_note(store, witnesses, require) if pending else None
    if note is None:
        return 0
    size = TreeHead.parse(note.text).size
    done = 0
    for receipt in pending:
        if receipt.audit.seq < size:
            receipts.save(prove(receipt, note, tree))
            done += 1
    return done


def witness_now(audit: Audit) -> Callable[[ErasureReceipt], ErasureReceipt | None]:
    """For the erasure flow: right after its checkpoint, ask the push witnesses
    (``FACEGATE_AUDIT_WITNESS_URLS``) and return the receipt with its witnessed proof
    (None when no witness is configured or none cosigned)."""
    keys = [Verifier.parse(k) for k in audit.settings.witness_keys]

    def witness(receipt: ErasureReceipt) -> ErasureReceipt | None:
        if not keys or not audit.settings.witness_urls:
            return None
        audit.request_cosignatures()
        return attach_proof(receipt, audit.tree, audit.checkpoints, keys)

    return witness


@dataclass
class WitnessCheck:
    problems: list[str] = field(default_factory=list)
    #: (witness name, unix time of its cosignature) for each valid cosignature.
    witnesses: list[tuple[str, int]] = field(default_factory=list)
    size: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def check_witnessed(
    receipt: ErasureReceipt,
    operator: PublicKey | Keyring,
    witnesses: list[Verifier],
    require: int = 1,
) -> WitnessCheck:
    """Problems with the receipt's witnessed proof (its own signature is checked apart)."""
    out = WitnessCheck()
    w = receipt.witnessed
    if w is None:
        out.problems.append("the receipt carries no witnessed proof yet")
        return out
    try:
        note = Note.parse(w.checkpoint)
        head = TreeHead.parse(note.text)
        proof = [base64.b64decode(p, validate=True) for p in w.inclusion]
        entry = decode_entry(w.entry.encode())
    except (NoteError, binascii.Error, ValueError) as exc:
        out.problems.append(f"the witnessed proof is unreadable: {exc}")
        return out
    out.size = head.size
    claims, anchor = receipt.claims, receipt.audit
    if head.origin != anchor.log_id:
        out.problems.append(f"the checkpoint is of log {head.origin!r}, not {anchor.log_id!r}")
    if not (w.index == anchor.seq == entry.seq):
        out.problems.append("the proof is for another entry than the receipt's")
    if entry.computed_hash(check=False) != entry.hash or entry.hash != anchor.hash:
        out.problems.append("the entry in the receipt is not the one the receipt names")
    if (
        entry.type != EntryType.ERASURE_COMPLETED
        or entry.body.get("claims_digest") != claims.digest()
        or entry.body.get("request_id") != claims.request_id
    ):
        out.problems.append("the entry does not record these claims")
    if entry.subject is None or not opens(entry.subject, claims.subject, anchor.salt):
        out.problems.append("the entry's subject commitment does not open to the receipt's")
    if not verify_inclusion(leaf_hash(w.entry.encode()), w.index, head.size, proof, head.root):
        out.problems.append("the inclusion proof does not lead to the checkpoint's root")
    if not valid_signatures(note, operator_verifiers(operator, head.origin)):
        out.problems.append("the checkpoint is not signed by an operator key")
    cosigs = valid_signatures(note, witnesses)
    out.witnesses = [(v.name, t) for v, t in cosigs]
    if len(cosigs) < require:
        out.problems.append(
            f"{len(cosigs)} valid cosignature(s) from the given witness keys, {require} required"
        )
    return out
