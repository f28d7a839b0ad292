"""``facegate devices add|remove|list``: device accounts, ACLs and connection configs.

``add`` creates the device's MQTT account (a random password, hashed into
Mosquitto's password file), regenerates the ACL that pins the account to its
own topics (write ``.../events`` and ``.../acks``; read its own and its site's
``commands``), reloads the broker, and writes the device's connection config:
the TLS listener, the account, and the project CA to verify the broker with.
``remove`` deletes the account; the broker refuses the device from then on.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from edge_agent.wire.topics import (
    DeviceIdentity,
    ack_topic,
    command_topic,
    event_topic,
    site_command_topic,
)
from stream_processor.settings import StackSettings
from stream_processor.stack.layout import StateLayout, write_private
from stream_processor.stack.mosquitto import Mosquitto
from stream_processor.stack.tls import ensure_tls


def config_path(settings: StackSettings, identity: DeviceIdentity) -> Path:
    return StateLayout(settings.state_dir).devices_dir / f"{identity.username}.json"


def register_device(
    settings: StackSettings,
    identity: DeviceIdentity,
    tls: bool | None = None,
    rotate: bool = False,
) -> str:
    """Create (or keep) the device's account, reload the broker, write its connection file.

    ``tls`` defaults to True when the stack has a TLS listener
    (``FACEGATE_MQTT_TLS_PORT`` ≠ 0): the config then names that listener and a
    copy of the project CA. ``rotate`` gives an existing device a new password.
    Returns the path of the connection config (0600: it holds the password).
    """
    layout = StateLayout(settings.state_dir)
    broker = Mosquitto(settings)
    if rotate:
        broker.accounts.forget_password(identity.username)
    creds = broker.accounts.add_device(identity)
    broker.reload()
    use_tls = bool(settings.mqtt_tls_port) if tls is None else tls
    mqtt: dict[str, object] = {
        "host": settings.host,
        "port": settings.mqtt_port,
        "username": creds.username,
        "password": creds.password,
    }
    if use_tls:
        if not settings.mqtt_tls_port:
            raise click.UsageError("TLS asked for but FACEGATE_MQTT_TLS_PORT is 0")
        files = ensure_tls(layout, broker.tls_hostnames)
        # A public copy beside the configs: the bundle to hand to a device.
        ca_copy = layout.devices_dir / "ca.crt"
        layout.devices_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(files.ca_cert, ca_copy)
        hostnames = settings.mqtt_tls_hostnames
        mqtt.update(
            host=hostnames[0] if hostnames else settings.host,
            port=settings.mqtt_tls_port,
            ca_file=str(ca_copy),
        )
    config = {
        "tenant": identity.tenant,
        "site": identity.site,
        "gate": identity.gate,
        "device": identity.device,
        "mqtt": mqtt,
    }
    path = config_path(settings, identity)
    write_private(path, json.dumps(config, indent=2) + "\n")
    return str(path)


def unregister_device(settings: StackSettings, identity: DeviceIdentity) -> bool:
    """Delete the account and its config; the broker refuses the device's next
    publish (ACLs are re-read on reload) and its next connect."""
    broker = Mosquitto(settings)
    removed = broker.accounts.remove_device(identity)
    broker.reload()
    config_path(settings, identity).unlink(missing_ok=True)
    return removed


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
def add(tenant: str, site: str, gate: str, device: str, plain: bool, rotate: bool) -> None:
    """Create a device account and print where its connection config was written."""
    ident = _identity(tenant, site, gate, device)
    path = register_device(StackSettings(), ident, tls=False if plain else None, rotate=rotate)
    click.echo(path)
    click.echo(
        f"  publishes {event_topic(ident)}, {ack_topic(ident)}\n"
        f"  reads     {command_topic(ident)}, {site_command_topic(ident.tenant, ident.site)}",
        err=True,
    )


@devices.command()
@_with_ids
def remove(tenant: str, site: str, gate: str, device: str) -> None:
    """Delete a device account; the broker refuses it from now on."""
    removed = unregister_device(StackSettings(), _identity(tenant, site, gate, device))
    click.echo("removed" if removed else "no such device")
    if not removed:
        raise SystemExit(1)


@devices.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per device")
def list_(as_json: bool) -> None:
    """List registered devices (no secrets)."""
    settings = StackSettings()
    for d in Mosquitto(settings).accounts.devices():
        path = config_path(settings, d)
        if as_json:
            row = {
                "tenant": d.tenant, "site": d.site, "gate": d.gate, "device": d.device,
                "username": d.username, "config": str(path) if path.exists() else None,
            }  # fmt: skip
            click.echo(json.dumps(row))
        else:
            click.echo(f"{d.tenant}\t{d.site}\t{d.gate}\t{d.device}\t{d.username}")
