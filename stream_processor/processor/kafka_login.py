"""A stream worker's Kafka login as Faust takes it (shared by the processor and the
erasure worker; ``runtime`` builds the other libraries' settings but may not import Faust)."""

from __future__ import annotations

from typing import Any

import faust

from stream_processor.runtime.kafka_auth import MECHANISM, Role, login
from stream_processor.runtime.settings import BrokerSettings


def faust_login(stack: BrokerSettings, role: Role) -> dict[str, Any]:
    """``faust.App`` settings that log a worker in as ``role`` (none with auth off)."""
    creds = login(stack, role)
    if creds is None:
        return {}
    user, secret = creds
    return {
        "broker_credentials": faust.SASLCredentials(
            username=user, password=secret, mechanism=MECHANISM
        )
    }
