"""Pattern checks on the whole string for msgspec Structs, for their ``__post_init__``.

msgspec checks a ``Meta(pattern=...)`` with Python's ``re.search``, where ``$`` also
matches before a final newline: it takes ``"site\\n"`` for ``^[a-z0-9-]+$``. The
published JSON Schema (ECMA-262, where ``$`` is the end) says the whole string.
``check_whole`` refuses a pattern field, or a pattern string inside a list field, that
its pattern does not match as a whole; raised from ``__post_init__`` it is a
``msgspec.ValidationError`` for ``decode`` and ``convert`` alike (``strict.py`` does
the same inside the strict wire decoder, without a second pass).
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable
from typing import Any

import msgspec

#: Per struct type: (field, whole-string matcher, pattern, whether the field is a list).
_Check = tuple[str, Callable[[str], Any], str, bool]
_CHECKS: dict[type, list[_Check]] = {}


def pattern_of(tp: Any) -> tuple[str | None, bool]:
    """The pattern a field's type carries (through Optional and one list level), and
    whether the field holds a list of such strings."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        base, *metas = typing.get_args(tp)
        found = [m.pattern for m in metas if isinstance(m, msgspec.Meta) and m.pattern]
        return (found[0], False) if found else pattern_of(base)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            pattern, many = pattern_of(arg)
            if pattern is not None:
                return pattern, many
        return None, False
    if origin in (list, tuple, set, frozenset):
        args = typing.get_args(tp)
        pattern, _ = pattern_of(args[0]) if args else (None, False)
        return pattern, pattern is not None
    return None, False


def _checks(struct: type[msgspec.Struct]) -> list[_Check]:
    found = _CHECKS.get(struct)
    if found is None:
        found = []
        for f in msgspec.structs.fields(struct):
            pattern, many = pattern_of(f.type)
            if pattern is not None:
                found.append((f.name, re.compile(pattern).fullmatch, pattern, many))
        _CHECKS[struct] = found
    return found


def check_whole(value: msgspec.Struct) -> None:
    """Raise ``ValueError`` naming the first pattern field of ``value`` whose value (or
    a string in it) its pattern does not match as a whole; a newline or a control
    character is outside every pattern of the wire."""
    for name, fullmatch, pattern, many in _checks(type(value)):
        field = getattr(value, name)
        if field is None:
            continue
        for text in field if many else (field,):
            if isinstance(text, str) and fullmatch(text) is None:
                raise ValueError(f"`{name}` must match {pattern!r} as a whole")
