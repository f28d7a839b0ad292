"""``facegate site secret create|export-for-gate``: the only way a site secret comes to exist.

The site office creates the secret once per site and keeps it; each gate of
the site gets a copy made for it, checked against the gate's device file, so
a gate never runs with another site's secret (its pseudonyms would name
nobody an erasure can reach).
"""

from __future__ import annotations

from pathlib import Path

import click

from stream_processor.cli.options import place_options


@click.group()
def site() -> None:
    """A site's own secrets (kept at the site office and on its gates)."""


@site.group()
def secret() -> None:
    """The site secret that turns resident ids into per-site pseudonyms."""


@secret.command()
@place_options
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="the new secret file (mode 0600; never overwritten)",
)
def create(tenant: str, site: str, out: Path) -> None:
    """Create the site secret (once per site, at the site office)."""
    from edge_agent.pseudonym import new_site_secret, write_site_secret

    write_site_secret(new_site_secret(tenant, site), out)
    click.echo(
        f"site secret of {tenant}/{site} → {out} (keep it at the office; back it up offline)"
    )


@secret.command("export-for-gate")
@click.option(
    "--secret",
    "secret_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="the site's secret (from site secret create)",
)
@click.option(
    "--device-config",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="the gate's device file (devices register); the secret must be of its site",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="where the gate reads it (its site_secret setting; mode 0600, never overwritten)",
)
def export_for_gate(secret_file: Path, device_config: Path, out: Path) -> None:
    """Copy the site secret for one gate, after checking the gate belongs to the site."""
    from edge_agent.pseudonym import load_site_secret, write_site_secret
    from edge_agent.uplink.settings import DeviceConnection

    identity = DeviceConnection.load(device_config).identity
    found = load_site_secret(secret_file, identity.tenant, identity.site)
    write_site_secret(found, out)
    click.echo(f"site secret of {found.tenant}/{found.site} for {identity.gate}/"
               f"{identity.device} → {out}")  # fmt: skip
