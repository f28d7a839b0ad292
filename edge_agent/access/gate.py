"""The gate actuator port, and a default that only records what it would do."""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger(__name__)


class GateActuator(Protocol):
    def open(self, kind: str) -> None: ...


class LoggingActuator:
    """For devices whose relay is driven elsewhere, tests and the demo."""

    def __init__(self) -> None:
        self.openings = 0

    def open(self, kind: str) -> None:
        self.openings += 1
        log.info("gate opened (%s)", kind)
