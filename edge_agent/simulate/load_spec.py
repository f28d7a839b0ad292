"""What a load run takes (``LoadSpec``, the devices' accounts) and what it reports."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from edge_agent.errors import InvalidInput
from edge_agent.pseudonym import SiteSecret
from edge_agent.uplink.settings import DeviceConnection
from edge_agent.wire import EventKind
from edge_agent.wire.topics import DeviceIdentity

#: What the demo policy stores when every simulated resident consented: all but
#: unknown faces (counted, never stored).
STORED_KINDS = frozenset(k.value for k in EventKind if k is not EventKind.UNKNOWN_FACE)
MAX_RATE = 10_000_000.0


@dataclass(frozen=True)
class LoadSpec:
    """What to simulate. Invalid values raise ``InvalidInput`` naming the field.

    ``rate`` is events/s over all devices (0 = as fast as the broker takes them);
    the run ends after ``duration_s`` or ``events`` (whichever comes first; at least
    one is required) or when ``stop`` is set. ``confirms`` keeps each event until
    the bridge confirms it durable (off: a PUBACK ends it, for the publishers-alone
    benchmark). ``first_seq`` defaults to the wall clock in ms × 1000, so the seqs
    of a later run never overlap an earlier one's.
    """

    sites: int = 1
    devices_per_site: int = 1
    rate: float = 100.0
    duration_s: float | None = None
    events: int | None = None
    residents: int = 200
    seed: int | None = None
    processes: int | None = None
    confirms: bool = True
    confirm_timeout_s: float = 30.0
    drain_timeout_s: float = 30.0
    max_unconfirmed: int = 20_000
    first_seq: int | None = None
    stored_kinds: frozenset[str] = STORED_KINDS
    host: str | None = None
    port: int | None = None
    keepalive_s: int = 30
    session_expiry_s: int = 7 * 24 * 3600
    connect_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        _check(self.sites >= 1, "sites must be at least 1")
        _check(self.devices_per_site >= 1, "devices_per_site must be at least 1")
        _check(self.devices <= 100_000, "at most 100,000 devices (sites × devices_per_site)")
        _check(math.isfinite(self.rate) and 0 <= self.rate <= MAX_RATE,
               f"rate must be between 0 and {MAX_RATE:,.0f} events/s (0 = as fast as possible)")
        _check(self.duration_s is not None or self.events is not None,
               "give a duration or a number of events")
        if self.duration_s is not None:
            _check(math.isfinite(self.duration_s) and self.duration_s > 0,
                   "duration_s must be a positive number of seconds")
        if self.events is not None:
            _check(1 <= self.events <= 10**12, "events must be between 1 and 10^12")
        _check(1 <= self.residents <= 100_000, "residents must be between 1 and 100,000")
        _check(self.processes is None or 1 <= self.processes <= 256,
               "processes must be between 1 and 256")
        for name in ("confirm_timeout_s", "connect_timeout_s"):
            value = getattr(self, name)
            _check(math.isfinite(value) and 0 < value <= 86_400, f"{name} must be in (0, 86400]")
        _check(math.isfinite(self.drain_timeout_s) and 0 <= self.drain_timeout_s <= 86_400,
               "drain_timeout_s must be in [0, 86400]")
        _check(1 <= self.max_unconfirmed <= 10_000_000,
               "max_unconfirmed must be between 1 and 10,000,000")
        _check(self.first_seq is None or 0 <= self.first_seq <= 2**52,
               "first_seq must be between 0 and 2^52")
        _check(self.port is None or 1 <= self.port <= 65535, "port must be between 1 and 65535")
        _check(5 <= self.keepalive_s <= 3600, "keepalive_s must be between 5 and 3600")
        _check(60 <= self.session_expiry_s <= 0xFFFFFFFF, "session_expiry_s must be ≥ 60")
        unknown = set(self.stored_kinds) - {k.value for k in EventKind}
        _check(not unknown, f"stored_kinds names unknown kinds: {sorted(unknown)}")  # fmt: skip

    @property
    def devices(self) -> int:
        return self.sites * self.devices_per_site


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise InvalidInput(f"load spec: {message}")


@dataclass(frozen=True)
class SimAccount:
    """A registered device (its ``devices add`` connection file) and its site's secret,
    which pseudonymises the simulated residents as the office's consents do."""

    connection: DeviceConnection
    site_secret: SiteSecret


@dataclass(frozen=True)
class DeviceReport:
    #: Inclusive seq range of the events this device made; None when it made none.
    seqs: tuple[int, int] | None
    made: int
    #: How many of them the policy in force stores (``LoadSpec.stored_kinds``).
    expected_stored: int
    published: int
    confirmed: int
    unconfirmed: int


@dataclass
class LoadReport:
    """Counts are of distinct events unless said otherwise."""

    made: int = 0
    #: PUBACKed at least once.
    published: int = 0
    #: PUBLISH packets sent, re-sends included.
    publishes: int = 0
    confirmed: int = 0
    expected_stored: int = 0
    refused: int = 0
    resend_rounds: int = 0
    reconnects: int = 0
    commands_received: int = 0
    elapsed_s: float = 0.0
    #: CPU seconds the publishing processes spent while making events (drain excluded).
    publisher_cpu_s: float = 0.0
    by_kind: dict[str, int] = field(default_factory=dict)
    per_device: dict[DeviceIdentity, DeviceReport] = field(default_factory=dict)
    last_refusal: str = ""

    @property
    def publish_rate(self) -> float:
        """Events made and handed to the broker per second of the publishing phase."""
        return self.published / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def unconfirmed(self) -> int:
        return sum(d.unconfirmed for d in self.per_device.values())


@dataclass(frozen=True)
class LoadProgress:
    elapsed_s: float
    made: int
    published: int
    confirmed: int
    connected: int
    devices: int


__all__ = [
    "MAX_RATE",
    "STORED_KINDS",
    "DeviceReport",
    "LoadProgress",
    "LoadReport",
    "LoadSpec",
    "SimAccount",
]
