"""The command tree as a newcomer reads it: every option explained, every group listing
all its commands, one spelling for each thing, --json where records are printed."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from stream_processor.cli.root import cli

pytestmark = pytest.mark.unit

#: Commands that print records (rows of a ledger, a registry, a book) for scripts to read.
PRINT_RECORDS = {
    "facegate audit verify",
    "facegate consent show",
    "facegate devices list",
    "facegate edge gallery list",
    "facegate erasure status",
    "facegate keycard list",
    "facegate policy history",
    "facegate policy show",
    "facegate stack status",
    "facegate status",
    "facegate web token list",
}

#: Spellings retired so that each thing has one name across commands.
RETIRED = {"--resident", "--evidence", "--card-ref", "--pseudonym"}


def walk(
    command: click.Command, path: str, ctx: click.Context | None = None
) -> Iterator[tuple[str, click.Command, click.Context]]:
    ctx = click.Context(command, info_name=path.split()[-1], parent=ctx)
    yield path, command, ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, f"{path} lists {name} but cannot load it"
            yield from walk(sub, f"{path} {name}", ctx)


TREE = list(walk(cli, "facegate"))


def test_the_tree_is_complete() -> None:
    paths = {p for p, _, _ in TREE}
    assert len(paths) > 60
    assert PRINT_RECORDS <= paths, PRINT_RECORDS - paths


@pytest.mark.parametrize("path,command,ctx", TREE, ids=[p for p, _, _ in TREE])
def test_every_option_has_help_and_one_spelling(
    path: str, command: click.Command, ctx: click.Context
) -> None:
    assert (command.help or command.short_help or "").strip(), f"{path} has no help"
    for param in command.params:
        if isinstance(param, click.Option):
            assert (param.help or "").strip(), f"{path} {param.opts[0]} has no help text"
            assert not RETIRED & set(param.opts), f"{path} uses {param.opts}"


@pytest.mark.parametrize(
    "path,command,ctx",
    [t for t in TREE if isinstance(t[1], click.Group)],
    ids=[p for p, c, _ in TREE if isinstance(c, click.Group)],
)
def test_group_help_lists_every_subcommand(
    path: str, command: click.Command, ctx: click.Context
) -> None:
    assert isinstance(command, click.Group)
    args = path.split()[1:]
    result = CliRunner().invoke(cli, [*args, "--help"], prog_name="facegate")
    assert result.exit_code == 0, result.output
    listed = result.output.split("Commands:", 1)[1]
    for name in command.list_commands(ctx):
        assert f"  {name} " in listed or listed.rstrip().endswith(f"  {name}") or (
            f"  {name}\n" in listed
        ), f"{path} --help does not list {name}"


@pytest.mark.parametrize("path", sorted(PRINT_RECORDS))
def test_commands_that_print_records_offer_json(path: str) -> None:
    command = next(c for p, c, _ in TREE if p == path)
    assert any("--json" in getattr(p, "opts", ()) for p in command.params), path


def test_version() -> None:
    from importlib.metadata import version

    result = CliRunner().invoke(cli, ["--version"], prog_name="facegate")
    assert result.exit_code == 0
    assert result.output.strip() == f"facegate, version {version('facegate')}"
