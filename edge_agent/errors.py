"""Exception root of the edge agent.

EdgeError
├── ConfigError          bad or missing configuration (not retriable)
├── WireError            a payload that does not fit the wire contract
├── OutboxError          the durable outbox cannot take or give events
│   └── OutboxFull       the configured ceiling is reached (retriable)
├── PublishError         the MQTT broker refused or is unreachable
├── AssetError           a model or test asset could not be fetched/converted/verified
├── ModelError           a model file is missing or behaves wrongly
├── GalleryError         the encrypted gallery cannot be read or written
│   └── GalleryKeyError  missing or wrong gallery key (fails loudly, never guesses)
└── ConsentRequired      enrollment without the consent reference it needs
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


class AssetError(EdgeError):
    """A model or test asset could not be fetched, converted or verified."""


class ModelError(EdgeError):
    """A model file is missing, malformed, or gives outputs of the wrong shape."""


class GalleryError(EdgeError):
    """The encrypted gallery cannot be read or written."""


class GalleryKeyError(GalleryError):
    """The gallery key is missing, malformed, or not the key the gallery was sealed with."""


class ConsentRequired(EdgeError):
    """Enrollment refused: a consent (or guardian-consent) reference is missing."""
