"""The device registry: device accounts, the broker's reload, and connection configs.

Registering a device creates its MQTT account (a random password the broker
hashes), has the broker regenerate the ACL that pins the account to its own
topics (write ``.../events`` and ``.../acks``; read its own and its site's
``commands``) and reload, and writes the device's connection config: the TLS
listener, the account, and the project CA to verify the broker with.
Unregistering deletes the account; the broker refuses the device from then on.

Both also write the shared device registry (``runtime/registry.py``, in the rights
database): the account file is one broker host's, the registry every host's.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from edge_agent.wire.topics import DeviceIdentity
from stream_processor.errors import ConfigError
from stream_processor.runtime.accounts import AccountBook, Credentials
from stream_processor.runtime.device_session import open_device_session
from stream_processor.runtime.layout import StateLayout, write_private
from stream_processor.runtime.registry import DeviceRegistry, operator
from stream_processor.runtime.settings import BrokerSettings
from stream_processor.runtime.tls import ensure_tls


class SessionOpener(Protocol):
    """Opens a device's persistent MQTT session (``device_session.open_device_session``)."""

    def __call__(
        self, identity: DeviceIdentity, creds: Credentials, host: str, port: int
    ) -> None: ...


class BrokerAccounts(Protocol):
    """The broker side of the registry: its account book, the names devices reach
    it by, and a reload that makes it re-read accounts and ACLs."""

    @property
    def accounts(self) -> AccountBook: ...

    @property
    def tls_hostnames(self) -> list[str]: ...

    def reload(self) -> None: ...


@contextmanager
def deployment_registry(settings: BrokerSettings) -> Iterator[DeviceRegistry]:
    """The registry in the deployment's rights database (``FACEGATE_RIGHTS_DSN``)."""
    from stream_processor.rights.db import connect_rights_db

    db = connect_rights_db(settings.state_dir)
    try:
        yield DeviceRegistry(db)
    finally:
        db.close()


def _in_registry(
    settings: BrokerSettings,
    registry: DeviceRegistry | None,
    act: Callable[[DeviceRegistry], bool],
) -> bool:
    if registry is not None:
        return act(registry)
    with deployment_registry(settings) as shared:
        return act(shared)


def config_path(settings: BrokerSettings, identity: DeviceIdentity) -> Path:
    return StateLayout(settings.state_dir).devices_dir / f"{identity.username}.json"


def register_device(
    settings: BrokerSettings,
    identity: DeviceIdentity,
    tls: bool | None = None,
    rotate: bool = False,
    *,
    broker: BrokerAccounts,
    open_session: SessionOpener | None = open_device_session,
    registry: DeviceRegistry | None = None,
    by: str | None = None,
) -> str:
    """Create (or keep) the device's account, reload the broker, open its session (so the
    broker queues the site's commands for it from now on, see ``device_session``), write
    its connection file.

    ``tls`` defaults to True when the stack has a TLS listener
    (``FACEGATE_MQTT_TLS_PORT`` ≠ 0): the config then names that listener and a
    copy of the project CA. ``rotate`` gives an existing device a new password.
    Returns the path of the connection config (0600: it holds the password).
    ``registry``: default the deployment's (``deployment_registry``).
    """
    layout = StateLayout(settings.state_dir)
    use_tls = bool(settings.mqtt_tls_port) if tls is None else tls
    if use_tls and not settings.mqtt_tls_port:
        raise ConfigError("TLS asked for but FACEGATE_MQTT_TLS_PORT is 0")
    # On the shared registry before the broker knows it: a gate that can connect is
    # always one every erasure of its site waits for, on every host.
    _in_registry(settings, registry, lambda r: r.register(identity, by or operator()))
    if rotate:
        broker.accounts.forget_password(identity.username)
    creds = broker.accounts.add_device(identity)
    broker.reload()
    mqtt: dict[str, object] = {
        "host": settings.host,
        "port": settings.mqtt_port,
        "username": creds.username,
        "password": creds.password,
    }
    if use_tls:
        files = ensure_tls(layout, broker.tls_hostnames)
        # A public copy beside the configs: the bundle to hand to a device.
        ca_copy = layout.devices_dir / "ca.crt"
        layout.devices_dir.mkdir(parents=True, exist_ok=True)
        _replace_copy(files.ca_cert, ca_copy)
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
    if open_session is not None:
        # Sessions are per client id, whichever listener: the registering host uses the
        # address it reaches the broker at.
        open_session(identity, creds, settings.host, settings.mqtt_port)
    path = config_path(settings, identity)
    write_private(path, json.dumps(config, indent=2) + "\n")
    return str(path)


def _replace_copy(source: Path, target: Path) -> None:
    """Copy in one step: an agent on this host may be loading ``target`` as its CA right
    now, and a truncated file fails its TLS set-up, so it dies before it serves."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def unregister_device(
    settings: BrokerSettings,
    identity: DeviceIdentity,
    *,
    broker: BrokerAccounts,
    registry: DeviceRegistry | None = None,
    by: str | None = None,
) -> bool:
    """Delete the account and its config; the broker refuses the device's next
    publish (ACLs are re-read on reload) and its next connect. The registry marks it
    removed (it stays on the erasure roster: it may still hold templates)."""
    removed = broker.accounts.remove_device(identity)
    broker.reload()
    config_path(settings, identity).unlink(missing_ok=True)
    marked = _in_registry(settings, registry, lambda r: r.remove(identity, by or operator()))
    return removed or marked
