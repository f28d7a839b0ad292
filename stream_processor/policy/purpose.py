"""Purpose limitation: a purpose exists only if the policy names and describes it.

There is no catch-all. Names such as ``public_security`` or ``security`` are
refused outright: "public security" must not become a blanket purpose, each
use needs a clearly stated one. Features that only make sense as surveillance
are refused by design, and a policy asking for them is invalid (see
``REFUSED_FEATURES``).
"""

from __future__ import annotations

import re

from edge_agent.wire.events import PURPOSE_PATTERN
from stream_processor.errors import InvalidInput

_PURPOSE = re.compile(PURPOSE_PATTERN)

#: Purpose names refused whatever their description: catch-alls, not purposes.
CATCH_ALL_PURPOSES = frozenset(
    {
        "public_security",
        "public_safety",
        "security",
        "safety",
        "general",
        "any",
        "all",
        "other",
        "misc",
        "miscellaneous",
        "law_enforcement",
        "surveillance",
        "monitoring",
    }
)

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


def check_purpose_name(name: str) -> str:
    """Return ``name`` if it may be declared as a purpose; raise ValueError otherwise."""
    if not _PURPOSE.match(name):
        raise InvalidInput(f"purpose {name!r} must match {PURPOSE_PATTERN}")
    if name in CATCH_ALL_PURPOSES:
        raise InvalidInput(
            f"purpose {name!r} is a catch-all, not a purpose: name the actual use "
            "(e.g. access_control) and describe it"
        )
    return name


def refused_features_in(keys: object) -> list[str]:
    """The refused-by-design features requested among ``keys`` (a mapping's keys)."""
    if not isinstance(keys, dict):
        return []
    return [f"{k}: {REFUSED_FEATURES[k]}" for k in keys if k in REFUSED_FEATURES]
