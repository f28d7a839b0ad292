"""``facegate notice``: camera notices — validate the registry, print the QR sheet."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import click

from stream_processor.runtime.settings import BrokerSettings


def _cameras_path(given: Path | None) -> Path:
    from stream_processor.web.settings import WebSettings

    return given or WebSettings().cameras(BrokerSettings().state_dir)


#: Hosts a resident's phone cannot reach: a QR code pointing there is useless on a wall.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0"})  # noqa: S104


def _public_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    parsed = urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname or " " in value:
        raise click.BadParameter(
            f"{value!r} is not an http(s) URL (e.g. https://notices.example.org)",
            ctx=ctx, param=param,
        )  # fmt: skip
    return value


def _warn_if_local(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host in LOCAL_HOSTS or host.startswith("127."):
        click.echo(
            f"warning: the QR codes point at {host}, which residents' phones cannot reach; "
            "pass --base-url or set FACEGATE_WEB_PUBLIC_URL",
            err=True,
        )


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
    from stream_processor.notices.config import load_registry

    path = _cameras_path(cameras)
    registry = load_registry(path)
    n = sum(len(s.cameras) for s in registry.sites)
    click.echo(f"{path}: OK, {len(registry.sites)} site(s), {n} camera(s)")
    errors = 0
    for policy_path in policies:
        from stream_processor.cli.policy import load_policy
        from stream_processor.notices.consistency import check_custom_purposes, check_site
        from stream_processor.policy.purpose import SHIPPED_PURPOSES
        from stream_processor.policy.retention import CompiledPolicy

        document = load_policy(policy_path)
        compiled = CompiledPolicy(document)
        custom = frozenset(document.purposes) - frozenset(SHIPPED_PURPOSES)
        for site in (s for s in registry.sites if s.tenant == compiled.tenant):
            found = check_site(site, compiled.allowed_purposes)
            for m in found + check_custom_purposes(site, custom):
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
    "--base-url", default=None, callback=_public_url,
    help="public URL of the web app, printed into the QR codes (default FACEGATE_WEB_PUBLIC_URL)",
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
    url = base_url or WebSettings().public_url
    _warn_if_local(url)
    result = render_sheet(matches[0], url, target, font)
    for cell in result.cells:
        click.echo(f"{cell.camera}: {cell.url}")
    click.echo("sheet → " + ", ".join(str(f) for f in result.files))
    if not result.chinese_labels:
        click.echo("note: no CJK font found; labels are in English only (pass --font)", err=True)
