"""``facegate``: the root command. Sub-groups are imported only when used, so
``facegate edge …`` works on a gate device that has no cloud packages.

``main`` is the one entry point of both sides (the gate device runs
``facegate edge …``): every error leaves as one ``Error: …`` line and an exit
code (``stream_processor.cli.handler``).
"""

from __future__ import annotations

import importlib
import logging
import os
from importlib.metadata import PackageNotFoundError, version

import click

from stream_processor.cli.environment import check_environment
from stream_processor.cli.handler import quiet_client_loggers, run

_GROUPS: dict[str, tuple[str, str, str]] = {
    "edge": ("edge_agent.cli", "edge", "the gate device: simulate, enroll, run"),
    "stack": ("stream_processor.cli.stack", "stack", "local brokers: up, down, status"),
    "devices": ("stream_processor.cli.devices", "devices", "device accounts and ACLs"),
    "bridge": ("stream_processor.cli.bridge", "bridge", "MQTT → Kafka bridge"),
    "processor": ("stream_processor.cli.processor", "processor", "Faust workers"),
    "demo": ("stream_processor.cli.demo", "demo", "a property firm's day, told as a story"),
    "simulate": ("stream_processor.cli.simulate", "simulate", "load from many simulated gates"),
    "consent": ("stream_processor.cli.consent", "consent", "consent ledger: grant, withdraw, show"),
    "policy": ("stream_processor.cli.policy", "policy", "retention and purpose policies"),
    "audit": ("stream_processor.cli.audit", "audit", "tamper-evident audit log, receipts"),
    "notice": ("stream_processor.cli.notice", "notice", "camera notices: validate, QR sheet"),
    "office": ("stream_processor.cli.office", "office", "site office: enrol with consent, check"),
    "keycard": ("stream_processor.cli.keycard", "keycard", "key cards on request"),
    "subject": ("stream_processor.cli.subject", "subject", "data-subject access export"),
    "site": ("stream_processor.cli.site", "site", "a site's secret: create, export for a gate"),
    "erasure": ("stream_processor.cli.erasure", "erasure", "erasure: request, status, receipt"),
    "web": ("stream_processor.cli.web", "web", "web app: notice pages, rights API"),
    "witness": ("stream_processor.cli.witness", "witness", "independent witness of an audit log"),
    "status": ("stream_processor.cli.status", "status", "the whole pipeline at a glance"),
}

#: Set by ``--debug`` (or ``FACEGATE_DEBUG=1``); read by the handler after a failure.
_debug = {"on": os.environ.get("FACEGATE_DEBUG", "") not in ("", "0")}


def _facegate_version() -> str:
    try:
        return version("facegate")
    except PackageNotFoundError:
        from edge_agent import __version__

        return __version__


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_GROUPS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _GROUPS:
            return None
        module, attr, _ = _GROUPS[cmd_name]
        try:
            command = getattr(importlib.import_module(module), attr)
        except ImportError as exc:
            extra = "edge" if cmd_name == "edge" else "cloud"
            raise click.ClickException(
                f"'{cmd_name}' needs a package that is not installed ({exc.name}); "
                f"run: pip install 'facegate[{extra}]'"
            ) from exc
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, _, help_) in sorted(_GROUPS.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.version_option(_facegate_version(), "--version", prog_name="facegate")
@click.option("-v", "--verbose", is_flag=True, help="debug logging of facegate's own modules")
@click.option(
    "--debug",
    is_flag=True,
    help="show the traceback of an error and the broker clients' logs (env FACEGATE_DEBUG=1)",
)
def cli(verbose: bool, debug: bool) -> None:
    """facegate: privacy-first face-recognition gate events, edge to cloud.

    An error is one 'Error: …' line on stderr and a non-zero exit: 1 an error,
    2 a usage error, 69 a broker that cannot be reached, 70 a bug.
    """
    _debug["on"] = _debug["on"] or debug
    debug = _debug["on"]
    from stream_processor.runtime.settings import LogSettings

    # Validated before anything runs: a misspelt level is one Error line.
    level = "DEBUG" if verbose or debug else LogSettings().level("INFO")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_client_loggers(debug)
    check_environment(os.environ)


def main() -> None:
    from stream_processor.cli.state_notice import announce_new_state_dir

    def invoke() -> object:
        with announce_new_state_dir():
            return cli.main(prog_name="facegate", standalone_mode=False)

    run(invoke, debug=lambda: _debug["on"])
