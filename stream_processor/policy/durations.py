"""Human durations in policy documents: ``0``, ``90s``, ``15m``, ``12h``, ``30d``, ``3y``."""

from __future__ import annotations

import re

from stream_processor.errors import InvalidInput

_UNITS_MS = {
    "s": 1000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 7 * 86_400_000,
    "y": 365 * 86_400_000,
}
_PATTERN = re.compile(r"^(\d{1,6})([smhdwy])$")

DAY_MS = _UNITS_MS["d"]


def parse_duration_ms(value: str | int) -> int:
    """``"30d"`` → milliseconds. A bare ``0`` (int or string) means zero; any other
    bare number is refused, so that nobody writes ``30`` meaning days or seconds."""
    if value == 0 or value == "0":
        return 0
    if isinstance(value, int) or not isinstance(value, str):
        raise InvalidInput(f"duration {value!r} needs a unit: s, m, h, d, w or y (e.g. '30d')")
    match = _PATTERN.fullmatch(value.strip())
    if not match:
        raise InvalidInput(f"duration {value!r} must look like 90s, 15m, 12h, 30d, 2w or 3y")
    return int(match.group(1)) * _UNITS_MS[match.group(2)]


def format_duration_ms(ms: int) -> str:
    if ms == 0:
        return "0"
    for unit in ("y", "w", "d", "h", "m", "s"):
        size = _UNITS_MS[unit]
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"
