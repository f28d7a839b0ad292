"""Decode a wire message strictly, with one stable reason for every way a payload is refused.

Reasons (``WireError.reason``; the bridge counts and dead-letters by them):

``invalid_utf8``   not UTF-8, or a string escapes a lone UTF-16 surrogate
``non_finite``     ``NaN``/``Infinity`` (not JSON, but some encoders emit them)
``bad_json``       any other malformed JSON (truncated, garbage, empty)
``too_deep``       containers nested deeper than the message's contract
``duplicate_key``  an object names one key twice (readers disagree on which wins)
``unknown_field``  a field the contract does not define (e.g. an image)
``missing_field``  a required field is absent
``out_of_range``   a number outside its bound (``wire.bounds``)
``invalid_field``  wrong type, pattern, length, enum value or cross-field rule

msgspec takes the last of two equal keys, so duplicates are looked for here.
The common case costs two byte counts: a JSON object of K members has at
least K-1 commas, so when the commas + 1 equal the fields the payload set,
no key can repeat. Anything else (explicit nulls, a comma inside a string)
falls back to a full parse that compares keys.
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from itertools import accumulate, count
from operator import attrgetter, sub
from typing import Any, Generic, NoReturn, TypeVar

import msgspec

from edge_agent.errors import WireError
from edge_agent.wire.bounds import MAX_DEPTH
from edge_agent.wire.strict import StrictDecoder

T = TypeVar("T", bound=msgspec.Struct)

REASONS = (
    "invalid_utf8",
    "non_finite",
    "bad_json",
    "too_deep",
    "duplicate_key",
    "unknown_field",
    "missing_field",
    "out_of_range",
    "invalid_field",
)

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_NON_FINITE = re.compile(rb"(?i)(?<![\w.])[+-]?(?:nan|inf(?:inity)?)(?!\w)")
#: A high surrogate escape without its low half (msgspec calls that "truncated").
_LONE_HIGH = re.compile(rb"(?i)\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f][0-9a-f]{2})")
_OUT_OF_RANGE = re.compile(
    r"^(?:Expected `int` [<>]=? |Integer value out of range|Number out of range)"
)
_CONTAINER = re.compile(r"got `(?:array|object)`")
#: Openers count 2, closers 0: the running sum less the position is the depth.
_BRACKETS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def _depths(payload: bytes) -> Iterator[int]:
    brackets = _STRING.sub(b"", payload).translate(_BRACKETS, _NOT_BRACKET)
    return map(sub, accumulate(brackets), count(1))


def nesting_depth(payload: bytes) -> int:
    """How deeply containers nest, outside strings (0 for a scalar)."""
    return max(0, max(_depths(payload), default=0))


def nested_deeper(payload: bytes, limit: int) -> bool:
    """``nesting_depth(payload) > limit``, stopping at the first level past it."""
    return any(map(limit.__lt__, _depths(payload)))


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Duplicate(key)
            seen.add(key)
    return out


def duplicate_key(payload: bytes) -> str | None:
    """The first key named twice in one object, at any depth; None if there is none.

    For a payload msgspec already decoded; one that Python's parser refuses
    (e.g. past its digit limit) is reported as the empty key.
    """
    try:
        json.loads(payload, object_pairs_hook=_pairs)
    except _Duplicate as dup:
        return dup.key
    except (ValueError, RecursionError):
        return ""
    return None


def _is_array(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _is_array(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_is_array(arg) for arg in typing.get_args(tp))
    return origin in (list, tuple, set, frozenset)


def _present_counter(struct: type[msgspec.Struct]) -> Callable[[Any], int]:
    """Members the payload must have had for the value decoded from it, or fewer
    (never more): the payload's commas + 1 when no key repeats."""
    fields = msgspec.structs.fields(struct)
    required = sum(f.required for f in fields)
    optional = [(f.name, f.default) for f in fields if not f.required]
    arrays = [f.name for f in fields if _is_array(f.type)]
    if not arrays and len(optional) > 1 and all(d is None for _, d in optional):
        # The hot path (gate events): a field left at None was absent, or an explicit
        # null (then this undercounts and the full parse decides).
        get, most = attrgetter(*(n for n, _ in optional)), required + len(optional)
        return lambda value: most - int(get(value).count(None))

    def present(value: Any) -> int:
        n: int = required + sum(bool(getattr(value, k) != d) for k, d in optional)
        # A flat array of n scalars adds n - 1 commas.
        return n + sum(max(len(getattr(value, k) or ()) - 1, 0) for k in arrays)

    return present


class WireDecoder(Generic[T]):
    """``decode(payload) -> T`` or ``WireError`` with one of ``REASONS``."""

    def __init__(
        self, struct: type[T], unique: Iterable[str] = (), max_depth: int = MAX_DEPTH
    ) -> None:
        self._strict = StrictDecoder(struct, unique)
        self._present = _present_counter(struct)
        self._fields = frozenset(f.name for f in msgspec.structs.fields(struct))
        self._max_depth = max_depth

    def decode(self, payload: bytes | bytearray | memoryview) -> T:
        if type(payload) is memoryview:
            payload = payload.tobytes()
        try:
            value = self._strict.decode(payload)
        except msgspec.ValidationError as exc:
            self._refuse_invalid(str(exc), payload)
        except msgspec.DecodeError as exc:
            self._refuse_malformed(str(exc), payload)
        except UnicodeDecodeError as exc:  # msgspec's own error for bad UTF-8 in a string
            raise WireError("invalid_utf8", f"not UTF-8 at byte {exc.start}") from None
        if payload.count(b",") + 1 != self._present(value):
            key = duplicate_key(bytes(payload))
            if key is not None:
                name = repr(key) if key in self._fields else "a key"
                raise WireError("duplicate_key", f"{name} appears twice in one object")
        return value

    def _refuse_invalid(self, text: str, payload: bytes | bytearray) -> NoReturn:
        if "unknown field" in text:
            reason = "unknown_field"
        elif "missing required field" in text:
            reason = "missing_field"
        elif _OUT_OF_RANGE.match(text):
            reason = "out_of_range"
        elif _CONTAINER.search(text) and nested_deeper(bytes(payload), self._max_depth):
            reason = "too_deep"
            text = f"nested deeper than {self._max_depth} ({text})"
        else:
            reason = "invalid_field"
        raise WireError(reason, text)

    def _refuse_malformed(self, text: str, payload: bytes | bytearray) -> NoReturn:
        data = bytes(payload)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WireError("invalid_utf8", f"not UTF-8 at byte {exc.start}") from None
        outside = _STRING.sub(b'""', data)
        if _NON_FINITE.search(outside):
            raise WireError("non_finite", f"NaN or Infinity is not a JSON number ({text})")
        if "surrogate" in text or _LONE_HIGH.search(data):
            raise WireError("invalid_utf8", f"a string escapes a lone UTF-16 surrogate ({text})")
        if nested_deeper(data, self._max_depth):
            raise WireError("too_deep", f"nested deeper than {self._max_depth} ({text})")
        raise WireError("bad_json", text)


def published_schema(struct: type, title: str, name: str | None = None) -> dict[str, object]:
    """The JSON Schema of a wire message for implementers of other devices; ``name``:
    the file it is published as under ``https://facegate.invalid/schema/``."""
    schema: dict[str, object] = msgspec.json.schema(struct)
    if name is not None:
        schema["$id"] = f"https://facegate.invalid/schema/{name}.json"
    schema["title"] = title
    return schema
