"""``facegate devices add|remove|list``: device accounts, ACLs and connection configs."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

import click

from edge_agent.wire.topics import DeviceIdentity
from stream_processor.settings import StackSettings
from stream_processor.stack.layout import StateLayout, write_private
from stream_processor.stack.mosquitto import Mosquitto


def register_device(settings: StackSettings, identity: DeviceIdentity) -> str:
    """Create (or keep) the device's account, reload the broker, write its connection file."""
    broker = Mosquitto(settings)
    creds = broker.accounts.add_device(identity)
    broker.reload()
    path = StateLayout(settings.state_dir).devices_dir / f"{identity.username}.json"
    config = {
        "tenant": identity.tenant,
        "site": identity.site,
        "gate": identity.gate,
        "device": identity.device,
        "mqtt": {
            "host": settings.host,
            "port": settings.mqtt_port,
            "username": creds.username,
            "password": creds.password,
        },
    }
    write_private(path, json.dumps(config, indent=2) + "\n")
    return str(path)


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
def add(tenant: str, site: str, gate: str, device: str) -> None:
    """Create a device account and print where its connection config was written."""
    path = register_device(StackSettings(), _identity(tenant, site, gate, device))
    click.echo(path)


@devices.command()
@_with_ids
def remove(tenant: str, site: str, gate: str, device: str) -> None:
    """Delete a device account; the broker refuses it from now on."""
    settings = StackSettings()
    broker = Mosquitto(settings)
    identity = _identity(tenant, site, gate, device)
    removed = broker.accounts.remove_device(identity)
    broker.reload()
    (StateLayout(settings.state_dir).devices_dir / f"{identity.username}.json").unlink(
        missing_ok=True
    )
    click.echo("removed" if removed else "no such device")


@devices.command(name="list")
def list_() -> None:
    """List registered devices (no secrets)."""
    for d in Mosquitto(StackSettings()).accounts.devices():
        click.echo(f"{d.tenant}\t{d.site}\t{d.gate}\t{d.device}")
