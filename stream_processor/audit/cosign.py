"""The log's side of C2SP ``tlog-witness``: ask witnesses to cosign a new checkpoint.

``POST <prefix>/add-checkpoint`` with ``old <size>``, the consistency proof
from that size (base64, one per line), a blank line and the signed
checkpoint. A 409 answers with the size the witness last cosigned
(``text/x.tlog.size``): the request is repeated once from there. A 200
answers with signature lines; only those that verify under the witness's
configured key are kept.
"""

from __future__ import annotations

import base64
import http.client
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from stream_processor.audit.errors import AuditError
from stream_processor.audit.note import Note, NoteError, Signature, Verifier
from stream_processor.audit.tlog import CheckpointStore, TreeHead
from stream_processor.audit.tree import StoredTree

log = logging.getLogger(__name__)
#: Cosignature lines are ~130 bytes each: a witness answering more is refused.
_MAX_ANSWER = 64 * 1024


class WitnessRefused(AuditError):
    """A witness answered add-checkpoint with an error status."""

    def __init__(self, url: str, status: int, body: str) -> None:
        super().__init__(f"witness {url} refused the checkpoint: HTTP {status} {body[:200]}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class Witness:
    """A witness to ask, and the keys whose cosignatures count (any of the configured)."""

    url: str
    verifiers: tuple[Verifier, ...]


def add_checkpoint_body(old: int, proof: list[bytes], note: Note) -> bytes:
    lines = [f"old {old}\n", *(base64.b64encode(p).decode() + "\n" for p in proof), "\n"]
    return "".join(lines).encode() + note.encode()


def post_add_checkpoint(url: str, body: bytes, timeout_s: float) -> tuple[int, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AuditError(f"a witness URL is http(s)://host[:port][/prefix], not {url!r}")
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname, parts.port, timeout=timeout_s)
    try:
        conn.request(
            "POST",
            parts.path.rstrip("/") + "/add-checkpoint",
            body=body,
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )
        resp = conn.getresponse()
        body = resp.read(_MAX_ANSWER + 1)
        if len(body) > _MAX_ANSWER:
            raise AuditError(f"witness {url} answered over {_MAX_ANSWER} bytes")
        return resp.status, body.decode("utf-8", "replace")
    except OSError as exc:
        raise AuditError(f"witness {url} unreachable: {exc}") from exc
    finally:
        conn.close()


def cosign_with(
    witness: Witness,
    note: Note,
    tree: StoredTree,
    store: CheckpointStore,
    timeout_s: float = 5.0,
) -> list[Signature]:
    """Ask one witness; returns its valid cosignatures (also stored). Raises
    WitnessRefused (e.g. 409 twice, 422 after a rewrite) or AuditError."""
    head = TreeHead.parse(note.text)
    old = store.witness_head(witness.url)
    for _ in range(2):
        old = min(old, head.size)
        body = add_checkpoint_body(old, tree.consistency(old, head.size), note)
        status, text = post_add_checkpoint(witness.url, body, timeout_s)
        if status == 409 and text.strip().isdigit() and int(text.strip()) != old:
            old = int(text.strip())
            if old > head.size:
                raise WitnessRefused(witness.url, status, f"it has cosigned size {old} already")
            continue
        if status != 200:
            raise WitnessRefused(witness.url, status, text)
        try:
            answer = Note(note.text, tuple(Signature.parse(x) for x in text.splitlines() if x))
        except NoteError as exc:
            raise AuditError(f"witness {witness.url} answered garbage: {exc}") from exc
        sigs = [
            s
            for s in answer.signatures
            if any(v.verify(note.text, s) is not None for v in witness.verifiers)
        ]
        if not sigs:
            raise AuditError(f"witness {witness.url} answered no cosignature under its key")
        store.add_cosignatures(head.size, sigs)
        store.set_witness_head(witness.url, head.size)
        return sigs
    raise WitnessRefused(witness.url, 409, "its size kept changing")


def cosign_all(
    witnesses: list[Witness],
    note: Note,
    tree: StoredTree,
    store: CheckpointStore,
    timeout_s: float = 5.0,
) -> dict[str, str | None]:
    """Ask each witness in turn; returns url → None (cosigned) or the reason it did not."""
    out: dict[str, str | None] = {}
    for w in witnesses:
        try:
            cosign_with(w, note, tree, store, timeout_s)
            out[w.url] = None
        except AuditError as exc:
            log.warning("%s", exc)
            out[w.url] = str(exc)
    return out
