"""A real card reader: a keyboard-wedge / HID reader in serial (CDC-ACM) mode, or anything
that writes one card number per line to a character device, FIFO or pipe.

Such readers type the card number followed by Enter (CR, LF or both) on a tty like
``/dev/ttyACM0`` or ``/dev/serial/by-id/…``. The device is opened non-blocking and
read as far as it has data at each poll: the agent's loop never waits on it. A line is a
card if it is 1-32 letters or digits (after trimming); anything else (noise, a burst
of keystrokes without Enter past the limit) is dropped and counted, never logged: it
may be a card number. A device that disappears (unplugged) is reopened on a later
poll, no sooner than ``reopen_s`` after the failure.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from edge_agent.access.inputs import Credential

log = logging.getLogger(__name__)

#: Longest card number accepted (decimal 26-bit Wiegand is 8 digits, 56-bit UIDs 14 hex).
MAX_CARD_CHARS = 32
#: A line longer than this without an end is noise: it is dropped.
MAX_PENDING = 256


def card_of_line(line: bytes) -> str | None:
    """The card number a reader typed, or None for anything that is not one."""
    text = line.strip().decode("ascii", errors="replace")
    if not text or len(text) > MAX_CARD_CHARS or not (text.isascii() and text.isalnum()):
        return None
    return text


class HidLineReader:
    """``CredentialInput`` over a device file, FIFO or pipe: one card number per line."""

    def __init__(
        self,
        path: Path,
        *,
        reopen_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.reopen_s = reopen_s
        self._clock = clock
        self._fd: int | None = None
        self._retry_at = 0.0
        self._pending = b""
        self.rejected = 0

    def _open(self) -> int | None:
        if self._fd is not None:
            return self._fd
        if self._clock() < self._retry_at:
            return None
        try:
            self._fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError as exc:
            self._fail(f"cannot open the card reader {self.path}: {exc.strerror}")
            return None
        return self._fd

    def _fail(self, why: str) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._pending = b""
        self._retry_at = self._clock() + self.reopen_s
        log.warning("%s; retrying in %.0f s", why, self.reopen_s)

    def _read(self, fd: int) -> bytes:
        chunks = []
        while True:
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EAGAIN:
                    break
                self._fail(f"the card reader {self.path} failed: {exc.strerror}")
                break
            if not chunk:  # a pipe with no writer, or the device went away
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def poll(self) -> list[Credential]:
        fd = self._open()
        if fd is None:
            return []
        data = self._pending + self._read(fd)
        lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        self._pending = lines.pop()
        if len(self._pending) > MAX_PENDING:
            self._pending = b""
            self.rejected += 1
        out = []
        for line in lines:
            if not line.strip():
                continue
            card = card_of_line(line)
            if card is None:
                self.rejected += 1
                log.warning("card reader %s: dropped a line that is not a card number", self.path)
                continue
            out.append(Credential("card", card))
        return out

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


__all__ = ["MAX_CARD_CHARS", "HidLineReader", "card_of_line"]
