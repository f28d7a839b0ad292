"""Credential inputs: a card reader / PIN pad / operator button behind one small Protocol.

- :class:`SimulatedCredentials` — in memory, for tests and embedding.
- :class:`LineFileCredentials` — follows a text file, one credential per line
  (``card <number>``, ``pin <digits>``, ``manual [reason]``); a serial or
  Wiegand reader daemon can append to it, and so can the demo.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

log = logging.getLogger(__name__)

CredentialType = Literal["card", "pin", "manual"]


@dataclass(frozen=True, slots=True)
class Credential:
    type: CredentialType
    #: the card number or PIN (never logged, never sent); the reason for manual
    value: str

    def __repr__(self) -> str:  # keep card numbers and PINs out of logs
        return f"Credential({self.type})"


class CredentialInput(Protocol):
    def poll(self) -> list[Credential]:
        """Credentials presented since the last poll (non-blocking)."""
        ...


def parse_line(line: str) -> Credential | None:
    parts = line.strip().split(maxsplit=1)
    if not parts:
        return None
    kind = parts[0].lower()
    value = parts[1].strip() if len(parts) > 1 else ""
    if kind == "card" and value:
        return Credential("card", value)
    if kind == "pin" and value.isdigit():
        return Credential("pin", value)
    if kind == "manual":
        return Credential("manual", value or "manual")
    return None


class SimulatedCredentials:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[Credential] = []

    def present_card(self, card_id: str) -> None:
        self._push(Credential("card", card_id))

    def enter_pin(self, pin: str) -> None:
        self._push(Credential("pin", pin))

    def manual_open(self, reason: str = "manual") -> None:
        self._push(Credential("manual", reason))

    def _push(self, cred: Credential) -> None:
        with self._lock:
            self._queue.append(cred)

    def poll(self) -> list[Credential]:
        with self._lock:
            out, self._queue = self._queue, []
        return out


class LineFileCredentials:
    """Reads lines appended to ``path`` since the last poll; starts at the file's end
    unless ``from_start`` (so a restart does not replay old presentations)."""

    def __init__(self, path: Path, *, from_start: bool = False, max_batch: int = 1000) -> None:
        self.path = path
        self.max_batch = max_batch
        self._offset = 0 if from_start or not path.exists() else path.stat().st_size
        self._partial = b""

    def poll(self) -> list[Credential]:
        try:
            with open(self.path, "rb") as fh:
                size = fh.seek(0, 2)
                if size < self._offset:  # truncated or replaced: start over
                    self._offset = 0
                fh.seek(self._offset)
                chunk = fh.read(64 * self.max_batch)
        except FileNotFoundError:
            return []
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        self._offset += len(chunk)
        out = []
        for raw in lines:
            cred = parse_line(raw.decode("utf-8", errors="replace"))
            if cred is None:
                if raw.strip():
                    log.warning("ignored an unreadable credential line")
                continue
            out.append(cred)
        return out
