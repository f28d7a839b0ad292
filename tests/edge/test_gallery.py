"""The consent-gated, encrypted gallery (unit: no broker, no model)."""

from __future__ import annotations

import base64
import os
import threading

import numpy as np
import pytest

from edge_agent.errors import ConsentRequired, GalleryError, GalleryKeyError
from edge_agent.gallery.consent import age_on, is_minor
from edge_agent.gallery.credentials import CredentialHasher
from edge_agent.gallery.enroll import Enrollment, apply_enrollment
from edge_agent.gallery.keys import KEY_ENV, create_key_file, load_key
from edge_agent.gallery.model import build_index, listing, remove_faces, remove_subject
from edge_agent.gallery.store import GalleryFile
from edge_agent.pseudonym import SiteSecret, pseudonym

pytestmark = pytest.mark.unit

SECRET = b"k" * 32
KEY = bytes(range(32))
SITE_SECRET = SiteSecret("acme", "site-1", SECRET)


def vectors(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, 192)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def enrollment(resident: str, faces: int = 2, **kw) -> Enrollment:  # type: ignore[no-untyped-def]
    base = dict(
        pseudonym=pseudonym(SITE_SECRET, resident), embeddings=vectors(faces), model="m-192",
        consent_ref="CONSENT-1", minor=False, guardian_consent_ref=None,
    )
    base.update(kw)
    return Enrollment(**base)  # type: ignore[arg-type]


def test_face_enrollment_needs_a_consent_reference(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "g.fgg"
    g = GalleryFile(path, KEY)
    with pytest.raises(ConsentRequired, match="no consent reference"):
        g.update(lambda d: apply_enrollment(d, enrollment("r1", consent_ref=None), 0))
    assert not path.exists()  # refused before anything was written
    # Into an existing gallery: refused, and the file is left exactly as it was.
    g.update(lambda d: apply_enrollment(d, enrollment("r0"), 0))
    before = path.read_bytes()
    with pytest.raises(ConsentRequired, match="no consent reference"):
        g.update(lambda d: apply_enrollment(d, enrollment("r1", consent_ref=None), 0))
    assert path.read_bytes() == before
    assert [r.pseudonym for r in g.load().records] == [pseudonym(SITE_SECRET, "r0")]


def test_a_minor_needs_a_guardian_consent_reference(tmp_path) -> None:  # type: ignore[no-untyped-def]
    g = GalleryFile(tmp_path / "g.fgg", KEY)
    with pytest.raises(ConsentRequired, match="guardian"):
        g.update(lambda d: apply_enrollment(d, enrollment("kid", minor=True), 0))
    record, data = g.update(
        lambda d: apply_enrollment(
            d, enrollment("kid", minor=True, guardian_consent_ref="GUARDIAN-7"), 0
        )
    )
    assert record.minor and record.guardian_consent_ref == "GUARDIAN-7"


def test_minor_is_under_14_on_the_day() -> None:
    import datetime as dt

    assert age_on(dt.date(2012, 6, 2), dt.date(2026, 6, 1)) == 13
    assert is_minor(dt.date(2012, 6, 2), dt.date(2026, 6, 1))
    assert not is_minor(dt.date(2012, 6, 1), dt.date(2026, 6, 1))


def test_card_only_resident_needs_no_biometric_consent(tmp_path) -> None:  # type: ignore[no-untyped-def]
    h = CredentialHasher(SECRET)
    g = GalleryFile(tmp_path / "g.fgg", KEY)
    record, _ = g.update(
        lambda d: apply_enrollment(
            d,
            enrollment("r2", faces=0, consent_ref=None, cards=(h.card("CARD-9"),)),
            0,
        )
    )
    assert record.templates == [] and record.cards == [h.card("CARD-9")]
    with pytest.raises(ConsentRequired, match="nothing to enroll"):
        apply_enrollment(g.load(), enrollment("r3", faces=0, consent_ref=None), 0)


def test_file_holds_no_plaintext_embedding_pseudonym_or_card(tmp_path) -> None:  # type: ignore[no-untyped-def]
    h = CredentialHasher(SECRET)
    e = enrollment("r1", cards=(h.card("CARD-1"),), pin=h.pin("1234"))
    g = GalleryFile(tmp_path / "g.fgg", KEY)
    g.update(lambda d: apply_enrollment(d, e, 0))
    blob = (tmp_path / "g.fgg").read_bytes()
    for row in e.embeddings:
        for dtype in ("<f4", ">f4", "<f8"):
            raw = np.asarray(row, dtype=dtype).tobytes()
            assert raw[:16] not in blob  # not even 4 consecutive floats
        assert str(float(row[0]))[:8].encode() not in blob
    for text in (e.pseudonym, h.card("CARD-1"), "CONSENT-1", "m-192"):
        assert text.encode() not in blob
    assert oct((tmp_path / "g.fgg").stat().st_mode & 0o777) == "0o600"
    assert GalleryFile(tmp_path / "g.fgg", KEY).load().records[0].pseudonym == e.pseudonym


def test_wrong_key_and_tampering_fail_loudly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    g = GalleryFile(tmp_path / "g.fgg", KEY)
    g.update(lambda d: apply_enrollment(d, enrollment("r1"), 0))
    with pytest.raises(GalleryKeyError, match="wrong gallery key"):
        GalleryFile(tmp_path / "g.fgg", bytes(32)).load()
    data = bytearray((tmp_path / "g.fgg").read_bytes())
    data[-20] ^= 1
    (tmp_path / "g.fgg").write_bytes(bytes(data))
    with pytest.raises(GalleryKeyError):
        g.load()
    (tmp_path / "g.fgg").write_bytes(b"not a gallery")
    with pytest.raises(GalleryError):
        g.load()


def test_key_from_file_or_env_never_guessed(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(GalleryKeyError, match="not found"):
        load_key(tmp_path / "none.key")
    create_key_file(tmp_path / "g.key")
    assert oct((tmp_path / "g.key").stat().st_mode & 0o777) == "0o600"
    assert len(load_key(tmp_path / "g.key")) == 32
    with pytest.raises(GalleryKeyError, match="exists"):
        create_key_file(tmp_path / "g.key")
    monkeypatch.setenv(KEY_ENV, base64.b64encode(KEY).decode())
    assert load_key(None) == KEY
    monkeypatch.setenv(KEY_ENV, "short")
    with pytest.raises(GalleryKeyError):
        load_key(None)


def test_listing_shows_pseudonyms_and_counts_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    g = GalleryFile(tmp_path / "g.fgg", KEY)
    g.update(lambda d: apply_enrollment(d, enrollment("alice", faces=3), 0))
    rows = listing(g.load())
    assert [(r.pseudonym, r.templates, r.cards, r.pin) for r in rows] == [
        (pseudonym(SITE_SECRET, "alice"), 3, 0, False)
    ]
    assert "alice" not in repr(rows)


def test_withdraw_keeps_the_key_card_erasure_removes_everything(tmp_path) -> None:  # type: ignore[no-untyped-def]
    h = CredentialHasher(SECRET)
    g = GalleryFile(tmp_path / "g.fgg", KEY)
    ps = pseudonym(SITE_SECRET, "bob")
    g.update(lambda d: apply_enrollment(d, enrollment("bob", cards=(h.card("C"),)), 0))
    removal, data = g.update(lambda d: remove_faces(d, ps))
    assert (removal.templates_removed, removal.record_removed) == (2, False)
    assert data.find(ps) is not None and data.find(ps).templates == []  # type: ignore[union-attr]
    assert len(build_index(data)) == 0
    removal, data = g.update(lambda d: remove_subject(d, ps))
    assert removal.record_removed and data.records == []


def test_pin_and_card_are_unique_per_site_and_models_do_not_mix(tmp_path) -> None:  # type: ignore[no-untyped-def]
    h = CredentialHasher(SECRET)
    g = GalleryFile(tmp_path / "g.fgg", KEY)
    g.update(lambda d: apply_enrollment(d, enrollment("a", pin=h.pin("1111")), 0))
    with pytest.raises(GalleryError, match="PIN"):
        g.update(lambda d: apply_enrollment(d, enrollment("b", pin=h.pin("1111")), 0))
    with pytest.raises(GalleryError, match="made with"):
        g.update(lambda d: apply_enrollment(d, enrollment("c", model="other-512"), 0))


def test_concurrent_updates_do_not_lose_enrollments(tmp_path) -> None:  # type: ignore[no-untyped-def]
    g = GalleryFile(tmp_path / "g.fgg", KEY)

    def add(i: int) -> None:
        GalleryFile(tmp_path / "g.fgg", KEY).update(
            lambda d: apply_enrollment(d, enrollment(f"r{i}", faces=1), 0)
        )

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(g.load().records) == 8
    assert not os.path.exists(tmp_path / "g.fgg.tmp")


def test_pseudonyms_of_two_sites_are_unlinkable() -> None:
    a = pseudonym(SiteSecret("acme", "north", b"a" * 32), "resident-1")
    b = pseudonym(SiteSecret("acme", "south", b"b" * 32), "resident-1")
    assert a != b and a.startswith("ps1_") and len(a) == 36
    assert pseudonym(SiteSecret("acme", "north", b"a" * 32), "resident-1") == a
