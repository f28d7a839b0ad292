"""Crypto-shredding: after an erasure or a withdrawal, an old copy of the gallery file
yields nothing of the resident to any key the gate still holds."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from edge_agent.commands.handler import CommandHandler
from edge_agent.errors import GalleryKeyError
from edge_agent.gallery.credentials import CredentialHasher
from edge_agent.gallery.enroll import Enrollment, apply_enrollment
from edge_agent.gallery.model import GalleryData, Record, template_bytes
from edge_agent.gallery.sealing import open_template, template_aad
from edge_agent.gallery.store import MAGIC, MAGIC_SHREDDABLE, GalleryFile
from edge_agent.metrics import EdgeMetrics
from edge_agent.outbox import SqliteOutbox
from edge_agent.wire.commands import CommandType, EdgeCommand
from edge_agent.wire.ids import new_event_id
from edge_agent.wire.topics import DeviceIdentity

pytestmark = pytest.mark.unit

KEY = bytes(range(32))
IDENTITY = DeviceIdentity("acme", "site-1", "gate-1", "cam-1")
ERASED, KEPT = "ps1_" + "a" * 32, "ps1_" + "b" * 32


def faces(seed: int, n: int = 2) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, 192)).astype(np.float32)
    out: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def enroll(g: GalleryFile, subject: str, seed: int, cards: tuple[str, ...] = ()) -> None:
    e = Enrollment(
        pseudonym=subject, embeddings=faces(seed), model="m-192", consent_ref="CONSENT-1",
        minor=False, guardian_consent_ref=None, cards=cards,
    )  # fmt: skip
    g.update(lambda d: apply_enrollment(d, e, 0))


def handler(g: GalleryFile, tmp: Path) -> CommandHandler:
    return CommandHandler(IDENTITY, "access_control", g, SqliteOutbox(tmp / "outbox.db"),
                          EdgeMetrics())  # fmt: skip


def command(kind: CommandType, subject: str) -> EdgeCommand:
    return EdgeCommand(
        schema_version=1, command_id=new_event_id(), type=kind, tenant="acme", site="site-1",
        subject=subject, issued_at_ms=int(time.time() * 1000),
    )  # fmt: skip


def keys_the_gate_holds(g: GalleryFile) -> list[bytes]:
    return [KEY, *g.keyring().values()]


def assert_shredded(g: GalleryFile, old_copy: Path, subject: str, seed: int) -> None:
    old = g.open_bytes(old_copy.read_bytes())  # the outer seal still opens with the gallery key
    (record,) = [r for r in old.records if r.pseudonym == subject]
    assert record.templates, "the old copy holds the sealed templates"
    plain = [template_bytes(v) for v in faces(seed)]
    for sealed in record.templates:
        assert all(p[:16] not in sealed for p in plain)
        for key in keys_the_gate_holds(g):
            for aad in (template_aad(record), b"", None):
                with pytest.raises(InvalidTag):
                    AESGCM(key).decrypt(sealed[:12], sealed[12:], aad)
    with pytest.raises(GalleryKeyError, match="shredded"):
        GalleryFile(old_copy, KEY, keyring_file=g.keyring_file).load()


def test_an_old_copy_yields_nothing_of_an_erased_resident(tmp_path: Path) -> None:
    g = GalleryFile(tmp_path / "g.fgg", KEY)
    enroll(g, ERASED, 1)
    enroll(g, KEPT, 2)
    old_copy = tmp_path / "stolen.fgg"
    shutil.copy(g.path, old_copy)
    assert g.path.read_bytes().startswith(MAGIC_SHREDDABLE)

    ack = handler(g, tmp_path).handle(command(CommandType.ERASE_SUBJECT, ERASED))
    assert ack.templates_removed == 2

    assert_shredded(g, old_copy, ERASED, 1)
    # Not vacuous: the resident still enrolled opens, from the old copy too.
    old = g.open_bytes(old_copy.read_bytes())
    (kept,) = [r for r in old.records if r.pseudonym == KEPT]
    key = g.keyring()[kept.key_id or ""]
    assert open_template(kept.templates[0], key, template_aad(kept)) == template_bytes(faces(2)[0])
    assert [r.pseudonym for r in g.load().records] == [KEPT]


def test_a_withdrawal_shreds_the_faces_and_keeps_the_card(tmp_path: Path) -> None:
    g = GalleryFile(tmp_path / "g.fgg", KEY)
    card = CredentialHasher(b"s" * 32).card("CARD-7")
    enroll(g, ERASED, 3, cards=(card,))
    old_copy = tmp_path / "stolen.fgg"
    shutil.copy(g.path, old_copy)

    handler(g, tmp_path).handle(command(CommandType.WITHDRAW_CONSENT, ERASED))

    assert g.keyring() == {}
    assert_shredded(g, old_copy, ERASED, 3)
    (record,) = g.load().records
    assert record.cards == [card] and record.templates == [] and record.key_id is None


def test_re_enrolment_after_erasure_gets_a_new_key(tmp_path: Path) -> None:
    g = GalleryFile(tmp_path / "g.fgg", KEY)
    enroll(g, ERASED, 1)
    first = g.keyring()
    handler(g, tmp_path).handle(command(CommandType.ERASE_SUBJECT, ERASED))
    enroll(g, ERASED, 4)
    assert not set(first.values()) & set(g.keyring().values())


def test_a_gallery_of_the_first_format_is_read_and_rewritten_shreddable(tmp_path: Path) -> None:
    g = GalleryFile(tmp_path / "g.fgg", KEY)
    plain = template_bytes(faces(5)[0])
    data = GalleryData(model="m-192", dim=192, records=[
        Record(pseudonym=KEPT, enrolled_at_ms=0, consent_ref="C", templates=[plain])
    ])  # fmt: skip
    g.path.write_bytes(g.seal(data))
    assert g.path.read_bytes().startswith(MAGIC)
    g.update(lambda d: None)
    assert g.path.read_bytes().startswith(MAGIC_SHREDDABLE)
    assert plain[:16] not in g.path.read_bytes() and len(g.keyring()) == 1
    assert g.load().records[0].templates == [plain]


def test_a_swapped_template_does_not_open(tmp_path: Path) -> None:
    g = GalleryFile(tmp_path / "g.fgg", KEY)
    enroll(g, ERASED, 1)
    enroll(g, KEPT, 2)
    data = g.open_bytes(g.path.read_bytes())
    a, b = data.records
    a.templates, b.templates = b.templates, a.templates
    g.path.write_bytes(g.seal(data, MAGIC_SHREDDABLE))
    with pytest.raises(GalleryKeyError):
        g.load()
