"""The device status message: how a gate device is doing, published every few seconds.

It carries counts, ages, rates and version strings only: nothing biometric,
no pseudonym, no resident id. The decoder refuses any field it does not
define, and every number is bounded, so a hostile device cannot push a
template, a name or a 10^300 into the cloud's tables through it.

Topic: ``facegate/v1/{tenant}/{site}/{gate}/{device}/status``. The identity
fields must equal the topic's (the bridge checks; the broker's ACL pins each
device to its own topics).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from edge_agent.wire.bounds import MAX_QUEUE_AGE_S, MAX_TIME_MS, MIN_TIME_MS
from edge_agent.wire.decoding import WireDecoder, published_schema
from edge_agent.wire.events import TOKEN_PATTERN, Id
from edge_agent.wire.topics import DeviceIdentity
from edge_agent.wire.whole import check_whole

STATUS_SCHEMA_VERSION = 1

#: Largest queue a device can report (its outbox holds far fewer).
MAX_OUTBOX = 100_000_000
#: Largest gallery: a single device never holds more templates than this.
MAX_TEMPLATES = 10_000_000
#: A device purges queued events older than this, so it never reports an older one.
MAX_AGE_S = MAX_QUEUE_AGE_S

EpochMs = Annotated[int, msgspec.Meta(ge=MIN_TIME_MS, le=MAX_TIME_MS)]
Version = Annotated[str, msgspec.Meta(pattern=TOKEN_PATTERN, description="a version string")]


class DeviceStatus(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Version 1 of the device status message."""

    schema_version: Literal[1]
    tenant: Id
    site: Id
    gate: Id
    device: Id
    sent_at_ms: EpochMs
    uptime_s: Annotated[int, msgspec.Meta(ge=0, le=10 * 365 * 86400)]
    outbox_depth: Annotated[
        int, msgspec.Meta(ge=0, le=MAX_OUTBOX, description="events queued for the cloud")
    ]
    oldest_queued_age_s: Annotated[
        float, msgspec.Meta(ge=0, le=MAX_AGE_S, description="age of the oldest queued event")
    ]
    gallery_templates: Annotated[
        int,
        msgspec.Meta(ge=0, le=MAX_TEMPLATES, description="face templates held (a count only)"),
    ]
    models: Annotated[
        list[Version],
        msgspec.Meta(max_length=8, description="ids of the detector and embedder models in use"),
    ]
    frames_per_s: Annotated[float, msgspec.Meta(ge=0, le=1000)]
    decision_latency_ms: Annotated[
        float, msgspec.Meta(ge=0, le=600_000, description="recent median, detect to decision")
    ]
    software_version: Version
    gallery_residents: (
        Annotated[
            int,
            msgspec.Meta(
                ge=0, le=MAX_TEMPLATES,
                description="residents with a face template (a count only); absent: unknown",
            ),
        ]
        | None
    ) = None  # fmt: skip

    def __post_init__(self) -> None:
        check_whole(self)  # msgspec's pattern check takes a trailing newline (wire/whole.py)

    @property
    def identity(self) -> DeviceIdentity:
        return DeviceIdentity(self.tenant, self.site, self.gate, self.device)


_encoder = msgspec.json.Encoder()
#: The model list is the one nested value: depth 2.
_decoder = WireDecoder(DeviceStatus, max_depth=2)


def encode_status(status: DeviceStatus) -> bytes:
    return _encoder.encode(status)


def decode_status(payload: bytes | bytearray | memoryview) -> DeviceStatus:
    """Decode and validate strictly; raises WireError with a reason of
    ``wire.decoding.REASONS``."""
    return _decoder.decode(payload)


def status_json_schema() -> dict[str, object]:
    """The JSON Schema of the status message, for implementers of other devices."""
    return published_schema(DeviceStatus, "facegate DeviceStatus v1", "device-status-v1")


def status_topic(identity: DeviceIdentity) -> str:
    return f"{identity.prefix}/status"


STATUS_FILTER = "facegate/v1/+/+/+/+/status"
