"""The device registry shared by every host: one row per gate device ever registered.

It lives in the rights database (``FACEGATE_RIGHTS_DSN``: PostgreSQL in a multi-host
deployment), written by ``facegate devices add|remove`` beside the broker's account
file. The account file only says who may connect *to that broker*; the registry says
which gates exist, for every process on every host, and it is what the erasure roster
reads.

A removed device keeps its row (``removed_at_ms``): a gate taken off the broker may
still hold templates, so it stays on the roster until it acknowledges or a privacy
officer waives it (``facegate erasure waive``), never silently by removal.
"""

from __future__ import annotations

import getpass
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.wire.topics import DeviceIdentity
from stream_processor.rights.db_port import RightsDb

_COLS = "tenant, site, gate, device, registered_at_ms, registered_by, removed_at_ms, removed_by"


@dataclass(frozen=True, slots=True)
class RegisteredDevice:
    identity: DeviceIdentity
    registered_at_ms: int
    registered_by: str
    removed_at_ms: int | None
    removed_by: str | None

    @property
    def active(self) -> bool:
        return self.removed_at_ms is None


def operator() -> str:
    """Who ran the command, for the registry's record (the OS account)."""
    try:
        return f"os:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (a bare container)
        return "os:unknown"


def _record(row: tuple[object, ...]) -> RegisteredDevice:
    tenant, site, gate, device, at, by, removed_at, removed_by = row
    return RegisteredDevice(
        DeviceIdentity(str(tenant), str(site), str(gate), str(device)),
        int(str(at)),
        str(by),
        None if removed_at is None else int(str(removed_at)),
        None if removed_by is None else str(removed_by),
    )


class DeviceRegistry:
    def __init__(self, db: RightsDb, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def register(self, identity: DeviceIdentity, by: str) -> bool:
        """Record the device as registered; True if it is new or was removed before (an
        active device keeps its first registration: a password rotation is no event)."""
        cur = self._db.execute(
            f"INSERT INTO device_registry ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL) "  # noqa: S608
            "ON CONFLICT (tenant, site, gate, device) DO UPDATE SET "
            "registered_at_ms = excluded.registered_at_ms, "
            "registered_by = excluded.registered_by, removed_at_ms = NULL, removed_by = NULL "
            "WHERE device_registry.removed_at_ms IS NOT NULL",
            (identity.tenant, identity.site, identity.gate, identity.device, self._now_ms(), by),
        )
        return cur.rowcount == 1

    def remove(self, identity: DeviceIdentity, by: str) -> bool:
        """Mark the device removed (its row stays); False if it was not active."""
        cur = self._db.execute(
            "UPDATE device_registry SET removed_at_ms = ?, removed_by = ? "
            "WHERE tenant = ? AND site = ? AND gate = ? AND device = ? "
            "AND removed_at_ms IS NULL",
            (self._now_ms(), by, identity.tenant, identity.site, identity.gate, identity.device),
        )
        return cur.rowcount == 1

    def set_metrics_address(self, identity: DeviceIdentity, address: str | None) -> None:
        """Where Prometheus scrapes the device's agent (None: nowhere)."""
        self._db.execute(
            "UPDATE device_registry SET metrics_address = ? "
            "WHERE tenant = ? AND site = ? AND gate = ? AND device = ?",
            (address, identity.tenant, identity.site, identity.gate, identity.device),
        )

    def metrics_addresses(self) -> dict[DeviceIdentity, str]:
        """The addresses of the devices registered now (a removed one is not scraped);
        as stored: the caller validates them."""
        rows = self._db.execute(
            "SELECT tenant, site, gate, device, metrics_address FROM device_registry "
            "WHERE removed_at_ms IS NULL AND metrics_address IS NOT NULL "
            "ORDER BY tenant, site, gate, device"
        ).fetchall()
        return {DeviceIdentity(str(t), str(s), str(g), str(d)): str(a) for t, s, g, d, a in rows}

    def records(self, tenant: str | None = None) -> list[RegisteredDevice]:
        sql = f"SELECT {_COLS} FROM device_registry"  # noqa: S608
        order = " ORDER BY tenant, site, gate, device"
        rows = (
            self._db.execute(sql + " WHERE tenant = ?" + order, (tenant,))
            if tenant is not None
            else self._db.execute(sql + order)
        ).fetchall()
        return [_record(tuple(r)) for r in rows]

    def active(self) -> list[DeviceIdentity]:
        """Devices registered now (what ``devices list`` shows)."""
        return [r.identity for r in self.records() if r.active]

    def roster(self) -> list[DeviceIdentity]:
        """Every device an erasure must hear from: registered now or removed since."""
        return [r.identity for r in self.records()]


__all__ = ["DeviceRegistry", "RegisteredDevice", "operator"]
