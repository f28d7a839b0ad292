"""Says where a command created the state directory.

``FACEGATE_STATE_DIR`` (default ``.facegate``) is resolved to an absolute path when the
settings load, so a relative value names a folder under wherever the command runs. A
command run from another folder would otherwise start a second, empty state directory
without a word: keys, the audit log and the rights DB split between the two.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from pydantic import ValidationError


def configured_state_dir() -> Path | None:
    """The absolute state directory the settings name; None if they are invalid (the
    command itself then says what is wrong)."""
    from stream_processor.runtime.settings import BrokerSettings

    try:
        return BrokerSettings().state_dir
    except ValidationError:
        return None


def notice(path: Path) -> str:
    return (
        f"facegate: created the state directory {path} "
        "(FACEGATE_STATE_DIR; set it to an absolute path to use one directory from any folder)"
    )


@contextmanager
def announce_new_state_dir(
    echo: Callable[[str], None] = lambda line: click.echo(line, err=True),
) -> Iterator[None]:
    """Print :func:`notice` on stderr if the command created the state directory.

    Only after a command that succeeded: a failed one leaves the one ``Error: …`` line
    alone on stderr."""
    path = configured_state_dir()
    existed = path is None or path.exists()
    yield
    if path is not None and not existed and path.exists():
        echo(notice(path))
