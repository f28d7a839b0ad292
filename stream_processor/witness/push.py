"""The witness's C2SP ``tlog-witness`` face: ``POST /add-checkpoint``, for logs that push.

The same rules as a pull round (decide.py), with the protocol's answers:
404 unknown origin, 403 no signature by a known key, 400 malformed or old size
above the checkpoint's, 409 (``text/x.tlog.size``, the size it holds) when the
old size is not the one it cosigned last or the same size comes with another
root, 422 when the consistency proof fails, 200 with the cosignature line.
A same-size other root and a failing proof are forks: stated and alarmed as
in a pull round.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from stream_processor.audit.note import Note, NoteError, valid_signatures
from stream_processor.audit.tlog import TreeHead
from stream_processor.witness.decide import Outcome, decide
from stream_processor.witness.service import WitnessService
from stream_processor.witness.state import Head

MAX_PROOF = 63
SIZE_TYPE = "text/x.tlog.size"


@dataclass(frozen=True)
class Answer:
    status: int
    text: str
    content_type: str = "text/plain"


def parse_request(body: bytes) -> tuple[int, list[bytes], Note, TreeHead]:
    """(old size, consistency proof, checkpoint note, its tree head); raises ValueError."""
    try:
        text = body.decode("utf-8")
        head_part, note_part = text.split("\n\n", 1)
        lines = head_part.split("\n")
        if not lines[0].startswith("old ") or len(lines) - 1 > MAX_PROOF:
            raise ValueError("an old size line, then at most 63 proof lines")
        old_text = lines[0][4:]
        if not old_text.isdigit() or (old_text != "0" and old_text.startswith("0")):
            raise ValueError("the old size is a decimal without leading zeroes")
        proof = [base64.b64decode(x, validate=True) for x in lines[1:]]
        note = Note.parse(note_part)
        return int(old_text), proof, note, TreeHead.parse(note.text)
    except (UnicodeDecodeError, binascii.Error, NoteError) as exc:
        raise ValueError(str(exc)) from None


def add_checkpoint(service: WitnessService, body: bytes) -> Answer:
    try:
        old, proof, note, head = parse_request(body)
    except ValueError as exc:
        return Answer(400, f"malformed add-checkpoint request: {exc}\n")
    trusted = service.trusted(head.origin)
    if not trusted:
        return Answer(404, "unknown log origin\n")
    if not valid_signatures(note, trusted):
        return Answer(403, "no signature by a known key of this log\n")
    if old > head.size:
        return Answer(400, "the old size is above the checkpoint's size\n")
    last = service.state.head(head.origin)
    held = last.size if last else 0
    if old != held:
        return Answer(409, f"{held}\n", SIZE_TYPE)
    last_head = TreeHead.parse(Note.parse(last.note).text) if last else None
    if last is None and proof:
        return Answer(422, "a proof from size 0 must be empty\n")
    decision = decide(last_head, head, proof if last is not None else None)
    if decision.outcome == Outcome.FORK:
        assert last is not None
        service.state_fork(head.origin, decision.reason, last.note, note.encode().decode(), proof)
        if old == head.size:
            return Answer(409, f"{held}\n", SIZE_TYPE)
        return Answer(422, "the consistency proof does not verify\n")
    operator_only = Note(note.text, tuple(s for s in note.signatures if s.name == head.origin))
    new = Head(head.size, head.root, operator_only.encode().decode())
    if not service.state.advance(head.origin, last, new):
        current = service.state.head(head.origin)
        return Answer(409, f"{current.size if current else 0}\n", SIZE_TYPE)
    service.cosigned(head.size)
    return Answer(200, service.signer.sign(note.text).line())
