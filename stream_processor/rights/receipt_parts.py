"""The parts an erasure receipt's claims are made of: deletions, device acknowledgements and
waivers, Kafka copies and other remnants, the scope (strict models, one field each)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from edge_agent.wire.events import PSEUDONYM_PATTERN, UUID7_PATTERN
from edge_agent.wire.topics import ID_PATTERN

FORMAT = "facegate.erasure-receipt/1"
# The wire contract's patterns: one definition of an id, a pseudonym, a UUIDv7.
UUID7 = UUID7_PATTERN
ID = ID_PATTERN
PSEUDONYM = PSEUDONYM_PATTERN
HEX64 = r"^[0-9a-f]{64}$"
Count = Annotated[int, Field(ge=0)]


class ReceiptModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Deletion(ReceiptModel):
    where: str = Field(
        description="the place: event_store, aggregates, kafka:<topic>, edge:<gate>/<device>"
    )
    what: str = Field(description="what was removed there, e.g. stored events, consent records")
    count: Count = Field(description="how many")


class DeviceAck(ReceiptModel):
    gate: str = Field(pattern=ID, description="gate of the device")
    device: str = Field(pattern=ID, description="device that acknowledged")
    command_id: str = Field(pattern=UUID7, description="the erase command it acknowledged")
    status: Literal["done"] = Field(description="only completed acknowledgements count")
    templates_removed: Count = Field(description="face templates removed from the gallery")
    outbox_events_purged: Count = Field(description="queued events of the subject purged")
    acked_at_ms: int = Field(description="when the device acknowledged (epoch ms)")


class KafkaCopy(ReceiptModel):
    topic: str = Field(description="a non-compacted topic that may still hold a copy")
    gone_by_ms: int = Field(
        description="time by which retention has removed the last copy (epoch ms)"
    )


class DeviceWaiver(ReceiptModel):
    """A device that never acknowledged, released by a privacy officer (audited)."""

    gate: str = Field(pattern=ID, description="gate of the device")
    device: str = Field(pattern=ID, description="device that did not acknowledge")
    reason: str = Field(min_length=1, max_length=200, description="why it was waived")
    by: str = Field(min_length=1, max_length=64, description="the privacy officer who waived")
    waived_at_ms: int = Field(description="when (epoch ms)")
    audit_seq: int = Field(ge=0, description="the erasure_waived entry in the audit log")


class Remnant(ReceiptModel):
    """A place a copy of something naming the subject can still be, and when it goes."""

    where: str = Field(description="the place: kafka:<topic>, mosquitto:queued, store:free_pages")
    until_ms: int = Field(description="by when it is gone (epoch ms); -1: no bound")
    how: str = Field(description="what removes it")


class ErasureScope(ReceiptModel):
    purposes: list[str] | None = Field(
        None, description="purposes erased; null means everything about the subject"
    )


__all__ = [
    "FORMAT",
    "HEX64",
    "ID",
    "PSEUDONYM",
    "UUID7",
    "Count",
    "Deletion",
    "DeviceAck",
    "DeviceWaiver",
    "ErasureScope",
    "KafkaCopy",
    "ReceiptModel",
    "Remnant",
]
