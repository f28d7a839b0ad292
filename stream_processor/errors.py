"""Errors of the cloud side, under the one root ``edge_agent.errors.FacegateError``.

The whole tree (device and cloud) is drawn in ``edge_agent/errors.py``.
``FacegateError`` and ``InvalidInput`` are re-exported here so cloud modules
import their errors from one place.
"""

from __future__ import annotations

from edge_agent.errors import FacegateError, InvalidInput

__all__ = [
    "BrokerError",
    "ConfigError",
    "FacegateError",
    "InvalidInput",
    "NotReady",
    "StackError",
    "StoreError",
]


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
