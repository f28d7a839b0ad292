"""``facegate edge gallery init-signing-key|export-bundle|import-bundle``: enrol once per site.

The office enrols residents into its own gallery (``facegate edge enroll``), exports it
as a bundle signed with the office key and sealed under the site's gallery key, and
each gate of the site imports it. See docs/operations.md, "Enrol once per site".
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from edge_agent.config import EdgeConfig


def _site(config: EdgeConfig) -> str:
    """``tenant/site`` of the site secret this office or gate holds: the bundle's site."""
    from edge_agent.pseudonym import load_site_secret

    secret = load_site_secret(config.site_secret)
    return f"{secret.tenant}/{secret.site}"


def _load_config(path: Path) -> EdgeConfig:
    from edge_agent.config import load_config

    return load_config(path)


config_option = click.option(
    "--config", "config_path", type=click.Path(path_type=Path), required=True,
    envvar="FACEGATE_EDGE_CONFIG", help="edge agent YAML config (env FACEGATE_EDGE_CONFIG)",
)


@click.command("init-signing-key")
@click.option("--key-file", type=click.Path(path_type=Path), required=True,
              help="the office's private Ed25519 key (PEM, 0600; refused if a file is there)")
@click.option("--public-out", type=click.Path(path_type=Path), required=True,
              help="the public key (PEM) to install on every gate of the site")
def init_signing_key(key_file: Path, public_out: Path) -> None:
    """Create the office key that signs gallery bundles."""
    from edge_agent.gallery.bundle import create_signing_key

    create_signing_key(key_file, public_out)
    click.echo(f"wrote {key_file} and {public_out}")


@click.command("export-bundle")
@config_option
@click.option("--out", type=click.Path(path_type=Path), required=True, help="bundle file to write")
@click.option("--signing-key", type=click.Path(path_type=Path), required=True,
              envvar="FACEGATE_EDGE_BUNDLE_SIGNING_KEY",
              help="office Ed25519 private key (env FACEGATE_EDGE_BUNDLE_SIGNING_KEY)")
@click.option("--version", "version", type=click.IntRange(min=1), default=None,
              help="bundle version (default: the last exported + 1)")
def export_bundle(config_path: Path, out: Path, signing_key: Path, version: int | None) -> None:
    """Export this (office) gallery as a signed bundle sealed under the site's gallery key."""
    from edge_agent.compose import open_gallery
    from edge_agent.gallery.bundle import load_signing_key
    from edge_agent.gallery.keys import load_key
    from edge_agent.gallery.transfer import export_bundle as export

    config = _load_config(config_path)
    done = export(
        open_gallery(config), out, site=_site(config), signing_key=load_signing_key(signing_key),
        site_key=load_key(config.gallery.key_file), now_ms=int(time.time() * 1000),
        version=version,
    )
    h = done.header
    click.echo(f"wrote {out}: site {h.site} version {h.version}, "
               f"{h.residents} residents, {h.templates} templates")


@click.command("import-bundle")
@config_option
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--office-key", type=click.Path(path_type=Path), required=True,
              envvar="FACEGATE_EDGE_BUNDLE_OFFICE_KEY",
              help="the office's public key (PEM; env FACEGATE_EDGE_BUNDLE_OFFICE_KEY)")
def import_bundle(config_path: Path, bundle: Path, office_key: Path) -> None:
    """Replace this gate's gallery with a newer office bundle (signature and version checked)."""
    from edge_agent.compose import open_gallery
    from edge_agent.gallery.bundle import load_office_key
    from edge_agent.gallery.keys import load_key
    from edge_agent.gallery.transfer import import_bundle as do_import

    config = _load_config(config_path)
    h = do_import(
        open_gallery(config), bundle.read_bytes(), site=_site(config),
        office_key=load_office_key(office_key), site_key=load_key(config.gallery.key_file),
    )
    click.echo(f"imported {bundle}: site {h.site} version {h.version}, "
               f"{h.residents} residents, {h.templates} templates")


COMMANDS = (init_signing_key, export_bundle, import_bundle)
