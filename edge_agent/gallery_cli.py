"""``facegate edge gallery``: the encrypted gallery's key, listing and removal (and the
site bundles of ``bundle_cli``)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edge_agent.bundle_cli import COMMANDS as BUNDLE_COMMANDS
from edge_agent.cli_options import checked_config, config_option, non_empty


@click.group()
def gallery() -> None:
    """The encrypted gallery: key, listing, removal, site bundles."""


for _command in BUNDLE_COMMANDS:
    gallery.add_command(_command)


@gallery.command("init-key")
@click.option(
    "--key-file", type=click.Path(path_type=Path), required=True,
    help="where the new key goes (refused if a file is there)",
)
def gallery_init_key(key_file: Path) -> None:
    """Create a new random gallery key (mode 0600). Keep it off the repository and backups."""
    from edge_agent.errors import GalleryKeyError
    from edge_agent.gallery.keys import create_key_file

    try:
        create_key_file(key_file)
    except GalleryKeyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {key_file}")


@gallery.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="print JSON (one document) instead of text")
def gallery_list(config_path: Path, as_json: bool) -> None:
    """Pseudonyms and counts only: no names, ids, card numbers or templates."""
    from edge_agent.compose import open_gallery
    from edge_agent.errors import EdgeError
    from edge_agent.gallery.model import listing

    try:
        data = open_gallery(checked_config(config_path)).load()
    except EdgeError as exc:
        raise click.ClickException(str(exc)) from None
    rows = listing(data)
    if as_json:
        click.echo(json.dumps([
            {"pseudonym": r.pseudonym, "templates": r.templates, "cards": r.cards,
             "pin": r.pin, "minor": r.minor} for r in rows
        ], indent=2))  # fmt: skip
        return
    click.echo(f"{'pseudonym':38} templates cards pin minor")
    for r in rows:
        click.echo(
            f"{r.pseudonym:38} {r.templates:9d} {r.cards:5d} {'yes' if r.pin else 'no':3} "
            f"{'yes' if r.minor else 'no'}"
        )
    click.echo(f"{len(rows)} residents, {sum(r.templates for r in rows)} templates")


@gallery.command("remove")
@config_option
@click.option(
    "--resident-id", "resident", required=True, callback=non_empty,
    help="resident id (hashed with the site secret, never stored)",
)
@click.option("--faces-only", is_flag=True, help="keep key cards / PIN (consent withdrawn)")
def gallery_remove(config_path: Path, resident: str, faces_only: bool) -> None:
    """Remove a resident (or only their face templates) and purge their queued events."""
    from edge_agent.compose import open_gallery
    from edge_agent.errors import EdgeError
    from edge_agent.gallery.model import remove_faces, remove_subject
    from edge_agent.outbox import SqliteOutbox
    from edge_agent.pseudonym import load_site_secret, pseudonym

    config = checked_config(config_path)
    subject = pseudonym(load_site_secret(config.site_secret), resident)
    change = remove_faces if faces_only else remove_subject
    try:
        removal, _ = open_gallery(config).update(lambda d: change(d, subject))
    except EdgeError as exc:
        raise click.ClickException(str(exc)) from None
    outbox = SqliteOutbox(config.outbox.path, max_rows=config.outbox.max_rows)
    purged = outbox.purge_subject(subject)
    outbox.close()
    click.echo(
        f"{subject}: {removal.templates_removed} templates removed, "
        f"record {'removed' if removal.record_removed else 'kept'}, {purged} queued events purged"
    )
