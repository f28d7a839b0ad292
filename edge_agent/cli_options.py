"""Options and helpers the ``facegate edge`` commands share."""

from __future__ import annotations

from pathlib import Path

import click


def non_empty(ctx: click.Context, param: click.Parameter, value: object) -> object:
    """Refuse an empty or blank string (one value or each of a repeated option)."""
    values = value if isinstance(value, tuple) else (value,)
    if any(isinstance(v, str) and not v.strip() for v in values):
        raise click.BadParameter("must not be empty", ctx=ctx, param=param)
    return value


def checked_config(path: Path):  # type: ignore[no-untyped-def]
    """The config at ``path``; every problem on one line."""
    from edge_agent.config import load_config
    from edge_agent.errors import ConfigError

    try:
        return load_config(path)
    except ConfigError as exc:
        problems = "; ".join(str(exc).splitlines())
        raise ConfigError(f"invalid config {path}: {problems}") from None


config_option = click.option(
    "--config", "config_path", type=click.Path(path_type=Path), required=True,
    envvar="FACEGATE_EDGE_CONFIG", help="edge agent YAML config (env FACEGATE_EDGE_CONFIG)",
)
