"""Options spelled once for every command: tenant, site and the subject.

A subject is named by its per-site pseudonym (``--subject ps1_…``) or, at the
site office that holds the site secret, by ``--resident-id`` with
``--site-secret``: the id is hashed here and never leaves this process.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def non_empty(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Refuse an empty or blank string (one value or each of a repeated option)."""
    values = value if isinstance(value, tuple) else (value,)
    if any(isinstance(v, str) and not v.strip() for v in values):
        raise click.BadParameter("must not be empty", ctx=ctx, param=param)
    return value


def place_options(f: F) -> F:
    """``--tenant`` and ``--site``, both required."""
    f = click.option("--site", required=True, callback=non_empty, help="site id")(f)
    return click.option("--tenant", required=True, callback=non_empty, help="tenant id")(f)


def subject_options(f: F) -> F:
    """``--subject`` or ``--resident-id`` with ``--site-secret``; see ``resolve_subject``."""
    f = click.option(
        "--site-secret",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="the site secret file (site office only), to turn --resident-id into the pseudonym",
    )(f)
    f = click.option(
        "--resident-id", default=None, callback=non_empty,
        help="resident id (hashed here with --site-secret, never sent or stored)",
    )(f)  # fmt: skip
    return click.option(
        "--subject", default=None, callback=non_empty,
        help="the subject's per-site pseudonym (ps1_…)",
    )(f)  # fmt: skip


def resolve_subject(
    subject: str | None,
    resident_id: str | None,
    site_secret: Path | None,
    tenant: str,
    site: str,
) -> str | None:
    """The pseudonym from ``--subject`` or ``--resident-id`` + ``--site-secret``; the
    secret must be the one of ``tenant``/``site``."""
    if subject is not None and resident_id is not None:
        raise click.UsageError("give --subject or --resident-id, not both")
    if resident_id is None:
        return subject
    if site_secret is None:
        raise click.UsageError("--resident-id needs --site-secret (at the site office)")
    from edge_agent.errors import ConfigError
    from edge_agent.pseudonym import load_site_secret, pseudonym

    try:
        return pseudonym(load_site_secret(site_secret, tenant, site), resident_id)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="'--site-secret'") from None


def require_subject(
    subject: str | None,
    resident_id: str | None,
    site_secret: Path | None,
    tenant: str,
    site: str,
) -> str:
    """As ``resolve_subject``, and one of the two must be given."""
    found = resolve_subject(subject, resident_id, site_secret, tenant, site)
    if found is None:
        raise click.UsageError("name the subject: --subject, or --resident-id with --site-secret")
    return found


json_option = click.option(
    "--json", "as_json", is_flag=True, help="print JSON (one document) instead of text"
)
