"""Purpose limitation: a closed vocabulary of purposes, and no catch-all.

facegate ships a few named purposes (``SHIPPED_PURPOSES``), each with a fixed
description and a ceiling on how long its face events may be kept. Any other
purpose is custom: the policy must describe it and give its legal basis, and
both are printed on the camera notice.

A purpose whose name contains a catch-all word is refused whatever its
description: "public security" or "pandemic control" is a reason to collect
everything, not a stated use. Matching is by the words a name contains, so
``publicsecurity`` and ``public_security_and_access`` are refused like
``public_security``. ``docs/processor.md`` lists the same words; a test reads
them from there, so the two cannot drift apart.

Features that only make sense as surveillance are refused by design, and a
policy asking for them is invalid (``REFUSED_FEATURES``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edge_agent.wire.events import PURPOSE_PATTERN
from stream_processor.errors import InvalidInput

_PURPOSE = re.compile(PURPOSE_PATTERN)
_DAY_MS = 86_400_000


@dataclass(frozen=True)
class ShippedPurpose:
    description: str
    max_face_retention_ms: int


#: The purposes facegate knows; a policy may declare them without a description.
SHIPPED_PURPOSES: dict[str, ShippedPurpose] = {
    "access_control": ShippedPurpose(
        "open the gate for residents and keep a log of who passed", 30 * _DAY_MS
    ),
    "visitor_management": ShippedPurpose(
        "admit a visitor a resident has registered, once, on the day of the visit", 7 * _DAY_MS
    ),
    "staff_attendance": ShippedPurpose(
        "record when the compound's own staff start and end a shift", 90 * _DAY_MS
    ),
}

#: Refused wherever they appear in a name, even run together (``publicsecurity``).
CATCH_ALL_STEMS = (
    "security", "safety", "public", "pandemic", "epidemic", "surveillance", "monitor",
    "tracking", "trail", "search", "police", "enforcement", "crime", "investigat", "profil",
)  # fmt: skip
#: Refused as whole words only (``all`` must not refuse ``hallway_access``).
CATCH_ALL_WORDS = ("general", "any", "all", "other", "misc", "miscellaneous", "track", "watch")

#: Policy keys that ask for a feature facegate refuses by design, with why.
REFUSED_FEATURES: dict[str, str] = {
    "unknown_face_search": "search over unknown faces: unknown faces are only counted, never "
    "stored individually, so there is nothing to search",
    "search_unknown_faces": "search over unknown faces is refused by design",
    "face_search": "search over faces is refused by design",
    "movement_trails": "per-person movement trails across gates and sites are refused by design",
    "movement_trail": "per-person movement trails are refused by design",
    "trails": "per-person movement trails are refused by design",
    "tracking": "tracking people across cameras is refused by design",
    "cross_site_linking": "pseudonyms are per site and must not be linked across sites",
}


def catch_all_words_in(name: str) -> list[str]:
    """The catch-all words ``name`` contains (empty: the name may be a purpose)."""
    tokens = set(name.split("_"))
    return [s for s in CATCH_ALL_STEMS if s in name] + [w for w in CATCH_ALL_WORDS if w in tokens]


def purpose_name_problems(name: str) -> list[str]:
    """Why ``name`` cannot be declared as a purpose (empty: it can)."""
    if not _PURPOSE.fullmatch(name):
        return [f"purpose {name!r} must match {PURPOSE_PATTERN}"]
    if found := catch_all_words_in(name):
        return [
            f"purpose {name!r} is a catch-all, not a purpose: it contains "
            f"{', '.join(repr(w) for w in found)}; name the actual use (e.g. access_control) "
            "and describe it"
        ]
    return []


def purpose_problems(name: str, description: str | None, legal_basis: str | None) -> list[str]:
    """Why the declaration of ``name`` is refused (empty: it is accepted)."""
    if problems := purpose_name_problems(name):
        return problems
    shipped = SHIPPED_PURPOSES.get(name)
    if shipped is not None:
        if description is not None and description != shipped.description:
            return [
                f"purpose {name!r} is shipped with a fixed description "
                f"({shipped.description!r}); leave description out"
            ]
        return []
    missing = [f for f, v in (("description", description), ("legal_basis", legal_basis)) if not v]
    if missing:
        return [
            f"purpose {name!r} is custom (shipped: {', '.join(SHIPPED_PURPOSES)}), so it needs "
            f"{' and '.join(missing)}: both are printed on the camera notice"
        ]
    return []


def check_purpose_name(name: str) -> str:
    """Return ``name`` if it may be declared as a purpose; raise InvalidInput otherwise."""
    if problems := purpose_name_problems(name):
        raise InvalidInput(problems[0])
    return name


def refused_features_in(keys: object) -> list[str]:
    """The refused-by-design features requested among ``keys`` (a mapping's keys)."""
    if not isinstance(keys, dict):
        return []
    return [f"{k}: {REFUSED_FEATURES[k]}" for k in keys if k in REFUSED_FEATURES]
