"""Exporting a site's gallery as a bundle at the office, and importing it at a gate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge_agent.gallery.bundle import (
    BundleHeader,
    ImportState,
    check_newer,
    load_state,
    make_bundle,
    open_bundle,
    replace_content,
    save_state,
    state_path,
)
from edge_agent.gallery.model import GalleryData
from edge_agent.gallery.store import GalleryFile


@dataclass(frozen=True, slots=True)
class Exported:
    header: BundleHeader
    path: Path


def export_bundle(
    gallery: GalleryFile, out: Path, *, site: str, signing_key: Ed25519PrivateKey,
    site_key: bytes, now_ms: int, version: int | None = None,
) -> Exported:
    """Write the office gallery as bundle ``version`` (default: the last exported + 1).

    The office remembers the last version it exported beside its gallery, so gates,
    which refuse anything not newer than what they hold, accept the next one.
    """
    record = state_path(gallery.path)
    last = load_state(record)
    if version is None:
        version = (last.version if last is not None and last.site == site else 0) + 1
    blob = make_bundle(
        gallery.load(), site=site, version=version, created_ms=now_ms,
        site_key=site_key, signing_key=signing_key,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(blob)
    tmp.replace(out)
    save_state(record, ImportState(site=site, version=version))
    return Exported(open_bundle(blob, site_key=site_key,
                                office_key=signing_key.public_key()).header, out)


def import_bundle(
    gallery: GalleryFile, blob: bytes, *, site: str | None, office_key: Ed25519PublicKey,
    site_key: bytes,
) -> BundleHeader:
    """Verify, decrypt and check the version, then replace the gate's gallery with it.

    Every check happens before the gallery is touched: a refused bundle changes nothing.
    """
    opened = open_bundle(blob, site_key=site_key, office_key=office_key)
    record = state_path(gallery.path)

    def change(data: GalleryData) -> None:
        # Checked under the gallery's lock, so two imports cannot both pass it.
        expected = load_state(record)
        if expected is None and site is not None:
            expected = ImportState(site=site, version=0)
        check_newer(opened.header, expected)
        replace_content(data, opened.data)

    gallery.update(change)
    save_state(record, ImportState(site=opened.header.site, version=opened.header.version))
    return opened.header
