"""Exception root of the edge agent.

EdgeError
├── ConfigError          bad or missing configuration (not retriable)
├── WireError            a payload that does not fit the wire contract
├── OutboxError          the durable outbox cannot take or give events
│   └── OutboxFull       the configured ceiling is reached (retriable)
└── PublishError         the MQTT broker refused or is unreachable
"""

from __future__ import annotations


class EdgeError(Exception):
    """Root of every error the edge agent raises on purpose."""

    retriable: bool = False


class ConfigError(EdgeError):
    """Configuration is invalid; the message says which field and why."""


class WireError(EdgeError):
    """A payload does not match the wire contract."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class OutboxError(EdgeError):
    """The outbox database failed."""


class OutboxFull(OutboxError):
    """The outbox reached its ceiling; the event was not accepted."""

    retriable = True


class PublishError(EdgeError):
    """The broker refused a publish or a connection."""

    retriable = True
