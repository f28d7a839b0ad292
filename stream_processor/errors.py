"""Exception root of the cloud side.

FacegateError
├── ConfigError            invalid settings (not retriable)
├── StackError             a local broker could not be installed/started/stopped
│   └── NotReady           a broker did not become ready in time (retriable)
├── BrokerError            Kafka or MQTT refused or is unreachable (retriable)
└── StoreError             the event store failed
"""

from __future__ import annotations


class FacegateError(Exception):
    """Root of every error the cloud side raises on purpose."""

    retriable: bool = False


class ConfigError(FacegateError):
    """Settings are invalid; the message names the field."""


class StackError(FacegateError):
    """A local broker could not be installed, started or stopped."""


class NotReady(StackError):
    """A broker did not become ready within its timeout."""

    retriable = True


class BrokerError(FacegateError):
    """Kafka or MQTT refused an operation or is unreachable."""

    retriable = True


class StoreError(FacegateError):
    """The event store failed."""
