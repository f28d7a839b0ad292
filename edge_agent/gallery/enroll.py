"""Enrolment, the one place it happens: photos become embeddings on the device (one face
per photo; the image is never stored), and an :class:`Enrollment` becomes a change to
:class:`GalleryData` (pure, testable without files)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from edge_agent.errors import ConsentRequired, EdgeError, GalleryError
from edge_agent.gallery.consent import check_enrollment
from edge_agent.gallery.model import GalleryData, Record, template_bytes
from edge_agent.vision.ports import Embedder, Embeddings, FaceDetector

#: Templates kept per resident (several photos help; more only slows matching).
MAX_TEMPLATES = 10


class PhotoError(EdgeError):
    """A photo cannot be used for enrollment (unreadable, no face, several faces)."""


def embed_photos(
    photos: list[Path], detector: FaceDetector, embedder: Embedder, min_face_px: int = 40
) -> Embeddings:
    rows = []
    for path in photos:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise PhotoError(f"{path.name}: cannot decode the image")
        faces = [f for f in detector.detect(np.asarray(image, dtype=np.uint8))
                 if f.width >= min_face_px]
        if len(faces) != 1:
            raise PhotoError(
                f"{path.name}: found {len(faces)} faces of at least {min_face_px}px; "
                "an enrollment photo must show exactly one"
            )
        rows.append(embedder.embed(np.asarray(image, dtype=np.uint8), faces)[0])
    if not rows:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    return np.stack(rows).astype(np.float32)


@dataclass(frozen=True, slots=True)
class Enrollment:
    pseudonym: str
    embeddings: NDArray[np.float32]
    model: str | None
    consent_ref: str | None
    minor: bool
    guardian_consent_ref: str | None
    cards: tuple[str, ...] = ()
    pin: str | None = None


def apply_enrollment(data: GalleryData, e: Enrollment, now_ms: int) -> Record:
    """Add or update the resident. Photos replace earlier templates; cards are added."""
    faces = len(e.embeddings)
    check_enrollment(
        faces=faces, consent_ref=e.consent_ref, minor=e.minor,
        guardian_consent_ref=e.guardian_consent_ref, credentials=len(e.cards) + (e.pin is not None),
    )
    if faces > MAX_TEMPLATES:
        raise GalleryError(f"at most {MAX_TEMPLATES} photos per resident")
    if faces:
        dim = int(e.embeddings.shape[1])
        if data.model is None or not any(r.templates for r in data.records):
            data.model, data.dim = e.model, dim
        elif data.model != e.model or data.dim != dim:
            raise GalleryError(
                f"gallery templates were made with {data.model} ({data.dim}-d); "
                f"cannot add {e.model} ({dim}-d) templates"
            )
    for other in data.records:
        if other.pseudonym == e.pseudonym:
            continue
        if e.pin is not None and other.pin == e.pin:
            raise GalleryError("this PIN is already in use at this site; choose another")
        if set(e.cards) & set(other.cards):
            raise GalleryError("this key card is already registered to another resident")
    record = data.find(e.pseudonym)
    if record is None:
        record = Record(pseudonym=e.pseudonym, enrolled_at_ms=now_ms)
        data.records.append(record)
    if faces:
        record.templates = [template_bytes(v) for v in e.embeddings]
        record.consent_ref = e.consent_ref
        record.minor = e.minor
        record.guardian_consent_ref = e.guardian_consent_ref
    elif record.templates and e.minor and not record.guardian_consent_ref:
        raise ConsentRequired("a minor's templates need a guardian-consent reference")
    record.cards = sorted(set(record.cards) | set(e.cards))
    if e.pin is not None:
        record.pin = e.pin
    return record
