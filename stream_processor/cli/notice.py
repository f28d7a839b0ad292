"""``facegate notice``: camera notices — validate the registry, print the QR sheet."""

from __future__ import annotations

from pathlib import Path

import click

from stream_processor.runtime.settings import BrokerSettings


def _cameras_path(given: Path | None) -> Path:
    from stream_processor.web.settings import WebSettings

    return given or WebSettings().cameras(BrokerSettings().state_dir)


@click.group()
def notice() -> None:
    """Camera notices: registry, pages, printable QR sheets."""


@notice.command("validate-config")
@click.option("--cameras", type=click.Path(path_type=Path), help="camera registry YAML")
@click.option(
    "--policy",
    "policies",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="policy document(s) (facegate policy format): check each camera's stated purposes "
    "against what the policy allows there (repeatable)",
)
def validate_config(cameras: Path | None, policies: tuple[Path, ...]) -> None:
    """Check the camera registry; print the errors and exit 1 if it is invalid.

    With --policy, a purpose the policy allows at a camera but the notice does
    not state is an error (a hidden use); the reverse is a warning.
    """
    from stream_processor.errors import ConfigError
    from stream_processor.notices.config import load_registry

    path = _cameras_path(cameras)
    try:
        registry = load_registry(path)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(1) from None
    n = sum(len(s.cameras) for s in registry.sites)
    click.echo(f"{path}: OK, {len(registry.sites)} site(s), {n} camera(s)")
    errors = 0
    for policy_path in policies:
        from stream_processor.notices.consistency import check_site
        from stream_processor.policy.document import parse_policy_yaml
        from stream_processor.policy.retention import CompiledPolicy

        try:
            compiled = CompiledPolicy(parse_policy_yaml(policy_path.read_text()))
        except ValueError as exc:
            raise click.ClickException(f"{policy_path}: invalid policy: {exc}") from None
        for site in (s for s in registry.sites if s.tenant == compiled.tenant):
            for m in check_site(site, compiled.allowed_purposes):
                errors += m.severity == "error"
                click.echo(f"{site.tenant}/{site.site}: {m}", err=m.severity == "error")
        click.echo(f"checked against {policy_path} (tenant {compiled.tenant})")
    if errors:
        raise SystemExit(1)


@notice.command()
@click.option("--site", required=True, help="site id")
@click.option("--tenant", default=None, help="tenant id (needed if two tenants share a site id)")
@click.option("--cameras", type=click.Path(path_type=Path), help="camera registry YAML")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="output .pdf or .png")
@click.option(
    "--base-url", default=None, help="public URL of the web app (FACEGATE_WEB_PUBLIC_URL)"
)
@click.option(
    "--font",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="a CJK font (TTF/TTC) for Chinese labels",
)
def sheet(
    site: str,
    tenant: str | None,
    cameras: Path | None,
    out: Path | None,
    base_url: str | None,
    font: Path | None,
) -> None:
    """Render a printable sheet with one QR code per camera of SITE."""
    from stream_processor.notices.config import load_registry
    from stream_processor.notices.sheet import render_sheet
    from stream_processor.web.settings import WebSettings

    registry = load_registry(_cameras_path(cameras))
    matches = registry.sites_named(site, tenant)
    if len(matches) != 1:
        found = "no site" if not matches else "several tenants have a site"
        raise click.ClickException(f"{found} named {site!r}; pass --tenant")
    target = out or Path(f"notice-sheet-{matches[0].tenant}-{site}.pdf")
    result = render_sheet(matches[0], base_url or WebSettings().public_url, target, font)
    for cell in result.cells:
        click.echo(f"{cell.camera}: {cell.url}")
    click.echo("sheet → " + ", ".join(str(f) for f in result.files))
    if not result.chinese_labels:
        click.echo("note: no CJK font found; labels are in English only (pass --font)", err=True)
