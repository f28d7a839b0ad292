"""Enrol once per site: a gallery bundle made at the office works at every gate of the
site, and is refused when tampered with, replayed, or opened without the site's key."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.errors import GalleryError, GalleryKeyError
from edge_agent.gallery.bundle import (
    BundleError,
    ImportState,
    check_newer,
    make_bundle,
    open_bundle,
    read_header,
)
from edge_agent.gallery.enroll import embed_photos
from edge_agent.gallery.keys import load_key
from edge_agent.gallery.model import GalleryData, Record, build_index, template_bytes
from edge_agent.gallery.store import GalleryFile
from edge_agent.gallery.transfer import export_bundle, import_bundle
from edge_agent.pseudonym import load_site_secret, new_site_secret, pseudonym, write_site_secret
from tests.support.edge import cli, write_config

SITE_KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
OFFICE = Ed25519PrivateKey.from_private_bytes(b"o" * 32)
PS = "ps1_" + "a" * 40


def _gallery(n: int = 2) -> GalleryData:
    v = np.random.default_rng(0).standard_normal((n, 8)).astype(np.float32)
    records = [Record(pseudonym=f"ps1_{i:040d}", enrolled_at_ms=1, consent_ref="C-1",
                      templates=[template_bytes(v[i])]) for i in range(n)]
    return GalleryData(model="m-8", dim=8, records=records)


def _bundle(version: int = 1, site: str = "site-a", key: bytes = SITE_KEY) -> bytes:
    return make_bundle(_gallery(), site=site, version=version, created_ms=5,
                       site_key=key, signing_key=OFFICE)


@pytest.mark.unit
def test_a_bundle_opens_with_the_site_key_and_office_signature() -> None:
    opened = open_bundle(_bundle(), site_key=SITE_KEY, office_key=OFFICE.public_key())
    assert opened.data == _gallery()
    assert (opened.header.site, opened.header.version, opened.header.residents) == ("site-a", 1, 2)


@pytest.mark.unit
def test_nothing_of_a_resident_is_readable_in_the_bundle() -> None:
    blob = _bundle()
    data = _gallery()
    for record in data.records:
        assert record.pseudonym.encode() not in blob
        assert record.templates[0] not in blob and record.templates[0][:8] not in blob
    assert b"C-1" not in blob


@pytest.mark.unit
@settings(max_examples=200, deadline=None)
@given(position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_one_changed_byte_anywhere_is_refused(position: int, bit: int) -> None:
    blob = bytearray(_bundle())
    blob[position % len(blob)] ^= 1 << bit
    with pytest.raises(GalleryError):
        open_bundle(bytes(blob), site_key=SITE_KEY, office_key=OFFICE.public_key())


@pytest.mark.unit
def test_a_bundle_signed_by_another_key_is_refused() -> None:
    forged = make_bundle(_gallery(), site="site-a", version=9, created_ms=5, site_key=SITE_KEY,
                         signing_key=Ed25519PrivateKey.generate())
    with pytest.raises(BundleError, match="not signed"):
        open_bundle(forged, site_key=SITE_KEY, office_key=OFFICE.public_key())


@pytest.mark.unit
def test_without_the_site_gallery_key_it_decrypts_nowhere() -> None:
    with pytest.raises(GalleryKeyError, match="wrong gallery key"):
        open_bundle(_bundle(), site_key=OTHER_KEY, office_key=OFFICE.public_key())


@pytest.mark.unit
def test_versions_only_move_forward_and_stay_on_one_site() -> None:
    header = read_header(_bundle(version=3))
    check_newer(header, None)
    check_newer(header, ImportState(site="site-a", version=2))
    for last in (3, 4):
        with pytest.raises(BundleError, match="not newer"):
            check_newer(header, ImportState(site="site-a", version=last))
    with pytest.raises(BundleError, match="site"):
        check_newer(header, ImportState(site="site-b", version=0))


@pytest.mark.unit
def test_a_refused_import_leaves_the_gate_gallery_as_it_was(tmp_path: Path) -> None:
    gate = GalleryFile(tmp_path / "gate.fgg", SITE_KEY)
    gate.update(lambda d: d.records.append(Record(pseudonym=PS, enrolled_at_ms=0, cards=["c1_x"])))
    import_bundle(gate, _bundle(2), site="site-a", office_key=OFFICE.public_key(),
                  site_key=SITE_KEY)
    before = gate.path.read_bytes()
    for blob in (_bundle(1), _bundle(2), _bundle(3, site="site-b")):
        with pytest.raises(BundleError):
            import_bundle(gate, blob, site="site-a", office_key=OFFICE.public_key(),
                          site_key=SITE_KEY)
    assert gate.path.read_bytes() == before
    content = [(r.pseudonym, r.templates) for r in gate.load().records]
    assert content == [(r.pseudonym, r.templates) for r in _gallery().records]
    # The gate sealed the templates under data keys of its own (crypto-shredding).
    assert all(r.key_id in gate.keyring() for r in gate.load().records)


@pytest.mark.unit
def test_the_office_numbers_its_exports(tmp_path: Path) -> None:
    office = GalleryFile(tmp_path / "office.fgg", SITE_KEY)
    office.update(lambda d: d.records.extend(_gallery().records))
    versions = [export_bundle(office, tmp_path / f"b{i}.fgb", site="site-a", signing_key=OFFICE,
                              site_key=SITE_KEY, now_ms=i).header.version for i in range(3)]
    assert versions == [1, 2, 3]


def _site_member(root: Path, office: Path, assets) -> Path:  # type: ignore[no-untyped-def]
    """A gate of the office's site: the same site secret and gallery key, its own gallery."""
    root.mkdir()
    for name in ("gallery.key", "site.secret"):
        shutil.copy(office / name, root / name)
    return write_config(root, assets, root / "device.json")


@pytest.mark.component
def test_enrolled_once_at_the_office_recognised_at_two_gates(  # type: ignore[no-untyped-def]
    tmp_path, assets, detector, embedder
) -> None:
    office = tmp_path / "office"
    office.mkdir()
    write_site_secret(new_site_secret("tenant-a", "site-a"), office / "site.secret")
    office_cfg = write_config(office, assets, office / "device.json")
    cli("edge", "enroll", "--config", str(office_cfg), "--resident-id", "R-0001",
        "--photo", str(assets.photo("obama.jpg")), "--consent-ref", "CONSENT-1", "--adult")
    cli("edge", "gallery", "init-signing-key", "--key-file", str(office / "office.key"),
        "--public-out", str(office / "office.pub"))
    v1 = office / "site-a-v1.fgb"
    out = cli("edge", "gallery", "export-bundle", "--config", str(office_cfg), "--out", str(v1),
              "--signing-key", str(office / "office.key")).stdout
    assert "version 1, 1 residents, 1 templates" in out
    gates = [_site_member(tmp_path / f"gate{i}", office, assets) for i in (1, 2)]
    for cfg in gates:
        cli("edge", "gallery", "import-bundle", "--config", str(cfg), str(v1),
            "--office-key", str(office / "office.pub"))

    expected = pseudonym(load_site_secret(office / "site.secret"), "R-0001")
    probes = embed_photos([assets.photo("obama2.jpg"), assets.photo("biden.jpg")],
                          detector, embedder)
    for cfg in gates:
        root = cfg.parent
        data = GalleryFile(root / "gallery.fgg", load_key(root / "gallery.key")).load()
        same, other = build_index(data).search(probes, 0.5)
        assert same.owner is not None and data.records[same.owner].pseudonym == expected
        assert other.owner is None

    # The same file, replayed or with one byte changed, is refused with one line.
    gate1 = gates[0]
    replay = cli("edge", "gallery", "import-bundle", "--config", str(gate1), str(v1),
                 "--office-key", str(office / "office.pub"), check=False)
    assert replay.returncode != 0 and "not newer" in replay.stderr
    assert "Traceback" not in replay.stderr
    tampered = tmp_path / "tampered.fgb"
    blob = bytearray(v1.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    tampered.write_bytes(bytes(blob))
    refused = cli("edge", "gallery", "import-bundle", "--config", str(gates[1]), str(tampered),
                  "--office-key", str(office / "office.pub"), check=False)
    assert refused.returncode != 0 and refused.stderr.startswith("Error: ")

    # A gate of another site (its own gallery key) cannot open the bundle at all.
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    write_site_secret(new_site_secret("tenant-a", "site-b"), stranger / "site.secret")
    stranger_cfg = write_config(stranger, assets, stranger / "device.json")
    foreign = cli("edge", "gallery", "import-bundle", "--config", str(stranger_cfg), str(v1),
                  "--office-key", str(office / "office.pub"), check=False)
    assert foreign.returncode != 0 and "wrong gallery key" in foreign.stderr
    # A gate that holds the site key but another site's secret refuses the bundle too.
    shutil.copy(office / "gallery.key", stranger / "gallery.key")
    other_site = cli("edge", "gallery", "import-bundle", "--config", str(stranger_cfg), str(v1),
                     "--office-key", str(office / "office.pub"), check=False)
    assert other_site.returncode != 0 and "tenant-a/site-b" in other_site.stderr
    assert not (stranger / "gallery.fgg").exists()
