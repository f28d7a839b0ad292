"""The gallery's content and the pure operations on it (no file, no key)."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import numpy as np
from numpy.typing import NDArray

from edge_agent.vision.match import TemplateIndex


class Record(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One resident, known only by pseudonym. No name, no resident id, no photo."""

    pseudonym: str
    enrolled_at_ms: int
    consent_ref: str | None = None
    guardian_consent_ref: str | None = None
    minor: bool = False
    #: float32 little-endian embeddings, one per enrolled photo (sealed on disk).
    templates: list[bytes] = msgspec.field(default_factory=list)
    #: The id of the data key in the keyring that seals the templates on disk;
    #: dropped with the templates, so the next save destroys the key.
    key_id: str | None = None
    #: keyed hashes of key-card numbers and of the PIN.
    cards: list[str] = msgspec.field(default_factory=list)
    pin: str | None = None


class GalleryData(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    version: int = 1
    #: The embedder the templates were made with; other models cannot use them.
    model: str | None = None
    dim: int = 0
    records: list[Record] = msgspec.field(default_factory=list)

    def find(self, pseudonym: str) -> Record | None:
        return next((r for r in self.records if r.pseudonym == pseudonym), None)


@dataclass(frozen=True, slots=True)
class Listing:
    pseudonym: str
    templates: int
    cards: int
    pin: bool
    minor: bool


@dataclass(frozen=True, slots=True)
class Removal:
    templates_removed: int
    record_removed: bool


def listing(data: GalleryData) -> list[Listing]:
    return [
        Listing(r.pseudonym, len(r.templates), len(r.cards), r.pin is not None, r.minor)
        for r in data.records
    ]


def remove_faces(data: GalleryData, pseudonym: str) -> Removal:
    """Consent withdrawn: drop the face templates, keep key cards / PIN (never locked out)."""
    record = data.find(pseudonym)
    if record is None:
        return Removal(0, False)
    removed = len(record.templates)
    record.templates = []
    record.key_id = None
    record.consent_ref = None
    record.guardian_consent_ref = None
    if not record.cards and record.pin is None:
        data.records.remove(record)
        return Removal(removed, True)
    return Removal(removed, False)


def remove_subject(data: GalleryData, pseudonym: str) -> Removal:
    """Erasure: drop everything about the resident."""
    record = data.find(pseudonym)
    if record is None:
        return Removal(0, False)
    data.records.remove(record)
    return Removal(len(record.templates), True)


def template_bytes(vector: NDArray[np.float32]) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def build_index(data: GalleryData) -> TemplateIndex:
    """Every template in one matrix; owner = index into ``data.records``."""
    rows: list[bytes] = []
    owners: list[int] = []
    for i, record in enumerate(data.records):
        rows += record.templates
        owners += [i] * len(record.templates)
    if not rows:
        return TemplateIndex.empty(max(data.dim, 1))
    matrix = np.frombuffer(b"".join(rows), dtype="<f4").reshape(len(rows), -1)
    return TemplateIndex(matrix.astype(np.float32), np.asarray(owners, dtype=np.int64))
