"""``facegate devices add|remove|list``: device accounts, ACLs and connection configs,
and the shared device registry (``runtime/devices.py``, ``runtime/registry.py``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

import click

from edge_agent.wire.topics import (
    DeviceIdentity,
    ack_topic,
    command_topic,
    event_topic,
    site_command_topic,
)
from stream_processor.errors import ConfigError
from stream_processor.runtime.device_targets import (
    forget_metrics_address,
    parse_metrics_address,
    set_metrics_address,
)
from stream_processor.runtime.devices import (
    config_path,
    deployment_registry,
    register_device,
    unregister_device,
)
from stream_processor.stack.mosquitto import Mosquitto
from stream_processor.stack.settings import StackSettings


def _identity(tenant: str, site: str, gate: str, device: str) -> DeviceIdentity:
    try:
        return DeviceIdentity(tenant, site, gate, device)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.group()
def devices() -> None:
    """Device accounts: each may publish only its own events and read its own commands."""


F = TypeVar("F", bound=Callable[..., None])


def _with_ids(f: F) -> F:
    for name in ("--device", "--gate", "--site", "--tenant"):
        f = click.option(name, required=True, help=f"{name[2:]} id (lower-case, 1-63 chars)")(f)
    return f


@devices.command()
@_with_ids
@click.option("--plain", is_flag=True, help="config for the loopback plain listener (local dev)")
@click.option("--rotate", is_flag=True, help="give an existing device a new password")
@click.option("--by", default=None, help="who registers it (default: the OS account)")
@click.option(
    "--metrics-address", metavar="HOST:PORT", default=None,
    help="where the stack's Prometheus scrapes this gate agent's /metrics",
)  # fmt: skip
def add(
    tenant: str, site: str, gate: str, device: str, plain: bool, rotate: bool,
    by: str | None, metrics_address: str | None,
) -> None:  # fmt: skip
    """Create a device account and print where its connection config was written."""
    ident = _identity(tenant, site, gate, device)
    settings = StackSettings()
    try:
        if metrics_address is not None:  # refused before anything is created
            metrics_address = parse_metrics_address(metrics_address)
        path = register_device(
            settings, ident, tls=False if plain else None, rotate=rotate,
            broker=Mosquitto(settings), by=by,
        )  # fmt: skip
        if metrics_address is not None:
            set_metrics_address(settings.state_dir, ident, metrics_address)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(path)
    click.echo(
        f"  publishes {event_topic(ident)}, {ack_topic(ident)}\n"
        f"  reads     {command_topic(ident)}, {site_command_topic(ident.tenant, ident.site)}",
        err=True,
    )


@devices.command()
@_with_ids
@click.option("--by", default=None, help="who removes it (default: the OS account)")
def remove(tenant: str, site: str, gate: str, device: str, by: str | None) -> None:
    """Delete a device account; the broker refuses it from now on. The registry keeps
    it as removed: erasures still wait for it until it acknowledges or is waived."""
    settings = StackSettings()
    ident = _identity(tenant, site, gate, device)
    removed = unregister_device(settings, ident, broker=Mosquitto(settings), by=by)
    forget_metrics_address(settings.state_dir, ident)
    click.echo("removed" if removed else "no such device")
    if not removed:
        raise SystemExit(1)


@devices.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per device")
def list_(as_json: bool) -> None:
    """List registered devices (no secrets), from the shared registry."""
    settings = StackSettings()
    with deployment_registry(settings) as registry:
        found = registry.active()
    known = {d.username for d in found}
    for d in Mosquitto(settings).accounts.devices():
        if d.username not in known:  # an account made before the registry existed
            click.echo(
                f"warning: {d.username} has a broker account but is not in the shared registry;"
                " run `facegate devices add` for it again (it keeps its password)",
                err=True,
            )
    if not as_json:
        click.echo("tenant\tsite\tgate\tdevice\tusername" if found else "no devices registered")
    for d in found:
        path = config_path(settings, d)
        if as_json:
            row = {
                "tenant": d.tenant, "site": d.site, "gate": d.gate, "device": d.device,
                "username": d.username, "config": str(path) if path.exists() else None,
            }  # fmt: skip
            click.echo(json.dumps(row))
        else:
            click.echo(f"{d.tenant}\t{d.site}\t{d.gate}\t{d.device}\t{d.username}")
