"""Edge agents in the device registry as Prometheus targets.

A gate's agent serves ``/metrics`` on the site's network, where it cannot write into
the cloud's ``<state>/monitoring/targets/`` itself. An operator names the address at
``facegate devices add --metrics-address HOST:PORT``; the registry keeps it beside
the device's account (``<devices>/metrics/<username>.json``; never in the gate's own
connection file, which the agent reads strictly), and writes one file_sd target
for it into the folder the stack's Prometheus watches. ``devices remove`` drops
both. Labels are the job and the device's tenant/site/gate/device ids: operator
chosen names of equipment, a bounded set, never a person.

With several hosts (``FACEGATE_RIGHTS_DSN``), the address is also kept in the shared
device registry, and a sync takes the devices and their addresses from there, not
from this host's account file and records: a gate registered on one host is scraped
by every host's Prometheus, and one removed anywhere is scraped by none.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edge_agent.wire.topics import DeviceIdentity
from stream_processor.errors import ConfigError
from stream_processor.runtime.accounts import AccountBook
from stream_processor.runtime.layout import StateLayout
from stream_processor.runtime.registry import DeviceRegistry
from stream_processor.runtime.targets import targets_dir, write_targets

#: Target files this module owns in the targets folder (one per device).
REGISTRY_PREFIX = "registry-"
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def parse_metrics_address(text: str) -> str:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6), normalised; a ConfigError says why not.

    Only a host name or an IP address and a port: a path, a scheme or a user part
    would be copied into Prometheus's target list, where it does not belong."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ConfigError(f"metrics address {text!r}: expected HOST:PORT")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ConfigError(f"metrics address {text!r}: port must be 1-65535")
    if host.startswith("[") and host.endswith("]"):
        try:
            v6 = ipaddress.IPv6Address(host[1:-1])
        except ValueError as exc:
            raise ConfigError(f"metrics address {text!r}: bad IPv6 address") from exc
        _refuse_unspecified(text, v6)
        return f"[{v6}]:{port}"
    try:
        _refuse_unspecified(text, ipaddress.IPv4Address(host))
    except ipaddress.AddressValueError:
        pass  # a host name
    if not _HOSTNAME.fullmatch(host):
        raise ConfigError(f"metrics address {text!r}: {host!r} is not a host name or address")
    return f"{host}:{port}"


def _refuse_unspecified(text: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    if ip.is_unspecified:  # a bind-all address names no machine to scrape
        raise ConfigError(f"metrics address {text!r}: name the address to scrape, not 'any'")


def _record(state_dir: Path, identity: DeviceIdentity) -> Path:
    return StateLayout(state_dir).devices_dir / "metrics" / f"{identity.username}.json"


def _target_file(state_dir: Path, identity: DeviceIdentity) -> Path:
    return targets_dir(state_dir) / f"{REGISTRY_PREFIX}{identity.username}.json"


def device_entry(identity: DeviceIdentity, address: str) -> list[dict[str, object]]:
    labels = {"job": "facegate-edge", "tenant": identity.tenant, "site": identity.site,
              "gate": identity.gate, "device": identity.device}  # fmt: skip
    return [{"targets": [address], "labels": labels}]


@contextmanager
def shared_registry(state_dir: Path) -> Iterator[DeviceRegistry | None]:
    """The shared device registry when the deployment has one (``FACEGATE_RIGHTS_DSN``),
    else None (one host: its account file is the truth)."""
    from stream_processor.rights.settings import RightsDbSettings

    if RightsDbSettings().dsn is None:
        yield None
        return
    from stream_processor.rights.db import connect_rights_db

    db = connect_rights_db(state_dir)
    try:
        yield DeviceRegistry(db)
    finally:
        db.close()


def set_metrics_address(state_dir: Path, identity: DeviceIdentity, address: str) -> None:
    """Remember the agent's /metrics address and make it a target now."""
    address = parse_metrics_address(address)
    with shared_registry(state_dir) as registry:
        if registry is not None:
            registry.set_metrics_address(identity, address)
    doc: dict[str, object] = {
        "tenant": identity.tenant, "site": identity.site, "gate": identity.gate,
        "device": identity.device, "address": address,
    }  # fmt: skip
    write_targets(_record(state_dir, identity), [doc])
    write_targets(_target_file(state_dir, identity), device_entry(identity, address))


def forget_metrics_address(state_dir: Path, identity: DeviceIdentity) -> None:
    with shared_registry(state_dir) as registry:
        if registry is not None:
            registry.set_metrics_address(identity, None)
    _record(state_dir, identity).unlink(missing_ok=True)
    _target_file(state_dir, identity).unlink(missing_ok=True)


def registered_addresses(state_dir: Path) -> dict[DeviceIdentity, str]:
    """Every device with a metrics address; an unreadable record is a ConfigError."""
    found: dict[DeviceIdentity, str] = {}
    for path in sorted((StateLayout(state_dir).devices_dir / "metrics").glob("*.json")):
        try:
            [doc] = json.loads(path.read_text())
            ident = DeviceIdentity(doc["tenant"], doc["site"], doc["gate"], doc["device"])
            found[ident] = parse_metrics_address(doc["address"])
        except (ConfigError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}: not a device metrics record ({exc})") from exc
    return found


def _local_addresses(state_dir: Path) -> dict[DeviceIdentity, str]:
    devices = set(AccountBook(StateLayout(state_dir)).devices())
    return {
        ident: addr for ident, addr in registered_addresses(state_dir).items()
        if ident in devices
    }  # fmt: skip


def _shared(registry: DeviceRegistry) -> dict[DeviceIdentity, str]:
    """The shared registry's addresses, each validated: a row written by hand into the
    shared database is as untrusted as a tampered record file."""
    found: dict[DeviceIdentity, str] = {}
    for ident, address in registry.metrics_addresses().items():
        try:
            found[ident] = parse_metrics_address(address)
        except ConfigError as exc:
            raise ConfigError(f"device registry, {ident.username}: {exc}") from exc
    return found


def sync_registry_targets(state_dir: Path) -> int:
    """Write a target for each registered device with an address, drop every other
    registry target (a device whose account is gone, or removed from the shared
    registry); returns how many."""
    with shared_registry(state_dir) as registry:
        wanted = _local_addresses(state_dir) if registry is None else _shared(registry)
    names = {_target_file(state_dir, ident).name for ident in wanted}
    for path in targets_dir(state_dir).glob(f"{REGISTRY_PREFIX}*.json"):
        if path.name not in names:
            path.unlink(missing_ok=True)
    for ident, address in wanted.items():
        write_targets(_target_file(state_dir, ident), device_entry(ident, address))
    return len(wanted)
