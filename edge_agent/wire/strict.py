"""A strict JSON decoder for a msgspec Struct that checks string patterns once per value.

msgspec checks every ``Meta(pattern=...)`` with a regular expression on every
decode: for a gate event that is nine regex searches, most of the decode's
time. But tenant, site, gate, device, purpose, model and pseudonym repeat from
event to event. ``StrictDecoder`` decodes into a twin of the struct without the
patterns (types, ranges, enums, unknown and missing fields still checked by
msgspec), then checks the patterns itself: a value of a repeating field is
remembered once it passed (a bounded memo per field), unique fields are
checked every time.
The twin is a subclass of the struct, so its ``__post_init__`` rules run and
the result is a ``GateEvent`` for every caller.

What is accepted and refused is what ``msgspec.json.Decoder(T)`` accepts and
refuses (side by side in ``tests/unit/test_wire_strict.py``), with one
deliberate difference: msgspec searches with Python's ``re``, where ``$`` also
matches before a trailing newline, so it takes ``"site\\n"`` for
``^[a-z0-9-]+$``. Here patterns must match the whole string, which is what the
published JSON Schema (ECMA-262 regex semantics) says.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Iterable
from operator import attrgetter, contains
from typing import Any, Generic, TypeVar, cast

import msgspec

from edge_agent.errors import WireError

T = TypeVar("T", bound=msgspec.Struct)

#: Distinct values of one field remembered as valid before its memo starts over.
MEMO_LIMIT = 100_000


def _without_pattern(tp: Any) -> tuple[Any, str | None]:
    """``tp`` with any pattern constraint removed, and that pattern."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        base, *metas = typing.get_args(tp)
        patterns = [m.pattern for m in metas if isinstance(m, msgspec.Meta) and m.pattern]
        if not patterns:
            return tp, None
        rest = [_drop_pattern(m) for m in metas]
        kept = [m for m in rest if m is not None]
        return (typing.Annotated[(base, *kept)] if kept else base), patterns[0]
    if origin in (typing.Union, types.UnionType):
        stripped = [_without_pattern(arg) for arg in typing.get_args(tp)]
        found = [p for _, p in stripped if p]
        return typing.Union[tuple(t for t, _ in stripped)], (found[0] if found else None)  # noqa: UP007
    return tp, None


def _drop_pattern(meta: Any) -> Any:
    if not isinstance(meta, msgspec.Meta) or not meta.pattern:
        return meta
    keep = {
        k: getattr(meta, k)
        for k in ("gt", "ge", "lt", "le", "multiple_of", "min_length", "max_length")
        if getattr(meta, k) is not None
    }
    return msgspec.Meta(**keep) if keep else None


class PatternError(WireError):
    """A string field does not match its pattern (worded like msgspec's own error)."""

    def __init__(self, field: str, pattern: str) -> None:
        super().__init__("pattern", f"Expected `str` matching regex {pattern!r} - at `$.{field}`")

    def __str__(self) -> str:
        return self.detail


class StrictDecoder(Generic[T]):
    """``decode(bytes) -> T``, refusing exactly what ``msgspec.json.Decoder(T)`` refuses.

    The result is an instance of a subclass of ``T`` whose fields carry no
    pattern (msgspec runs ``T.__post_init__`` during the decode); it compares and
    hashes equal to the ``T`` with the same field values. ``unique`` names
    pattern-checked fields whose values rarely repeat (ids): they are checked
    every time instead of being remembered.
    """

    def __init__(self, struct: type[T], unique: Iterable[str] = ()) -> None:
        unique = set(unique)
        overrides: list[Any] = []
        repeating: list[tuple[str, str]] = []
        self._unique: list[tuple[str, Callable[[str], Any], str]] = []
        for f in msgspec.structs.fields(struct):
            tp, pattern = _without_pattern(f.type)
            if pattern is None:
                continue
            overrides.append((f.name, tp) if f.required else (f.name, tp, f.default))
            if f.name in unique:
                self._unique.append((f.name, re.compile(pattern).fullmatch, pattern))
            else:
                repeating.append((f.name, pattern))
        twin = msgspec.defstruct(
            f"{struct.__name__}Checked",
            overrides,
            bases=(struct,),
            kw_only=True,
            namespace={"__eq__": _eq_by_value(struct), "__hash__": struct.__hash__},
            module=struct.__module__,
        )
        self._twin_decoder = msgspec.json.Decoder(twin)
        self._repeating = [(n, re.compile(p).fullmatch, p) for n, p in repeating]
        names = [n for n, _ in repeating]
        self._key: Callable[[Any], Any] = (
            attrgetter(*names) if len(names) > 1 else lambda e: tuple(getattr(e, n) for n in names)
        )
        # One memo per field; None is in each (msgspec already checked the type).
        self._valid: list[set[Any]] = [{None} for _ in names]

    def decode(self, payload: bytes | bytearray | memoryview) -> T:
        """Raises ``msgspec.ValidationError`` / ``msgspec.DecodeError`` like msgspec."""
        event = cast(T, self._twin_decoder.decode(payload))
        for name, match, pattern in self._unique:
            value = getattr(event, name)
            if value is not None and match(value) is None:
                raise msgspec.ValidationError(str(PatternError(name, pattern)))
        values = self._key(event)
        if all(map(contains, self._valid, values)):  # the usual case, all in C
            return event
        for (name, match, pattern), valid, value in zip(
            self._repeating, self._valid, values, strict=True
        ):
            if value in valid:
                continue
            if match(value) is None:
                raise msgspec.ValidationError(str(PatternError(name, pattern)))
            if len(valid) >= MEMO_LIMIT:
                valid.clear()
                valid.add(None)
            valid.add(value)
        return event


def _eq_by_value(struct: type[msgspec.Struct]) -> Callable[[Any, Any], Any]:
    def __eq__(self: Any, other: Any) -> Any:  # noqa: N807
        if isinstance(other, struct):
            return msgspec.structs.astuple(self) == msgspec.structs.astuple(other)
        return NotImplemented

    return __eq__
