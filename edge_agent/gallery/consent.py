"""Who may be enrolled, and with what: pure rules, no file or key involved.

- Face templates need a consent reference (separate consent for biometrics).
- A minor (under 14 on the enrollment date) also needs a guardian-consent reference.
- A card-only / PIN-only resident needs no biometric consent: refusing face
  scanning never locks anyone out.
"""

from __future__ import annotations

import re
from datetime import date

from edge_agent.errors import ConsentRequired
from edge_agent.wire.events import TOKEN_PATTERN

#: Age under which a person is a minor whose data needs a guardian's consent (PIPL art. 31).
MINOR_AGE = 14
_TOKEN = re.compile(TOKEN_PATTERN)


def age_on(birth: date, today: date) -> int:
    """Completed years on ``today``."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def is_minor(birth: date, today: date) -> bool:
    return age_on(birth, today) < MINOR_AGE


def check_reference(name: str, value: str | None) -> None:
    if value is not None and not _TOKEN.fullmatch(value):
        raise ConsentRequired(
            f"{name} {value!r} must be 1-64 characters of letters, digits and . _ : + -"
        )


def check_enrollment(
    *, faces: int, consent_ref: str | None, minor: bool, guardian_consent_ref: str | None,
    credentials: int,
) -> None:
    """Raise :class:`ConsentRequired` unless this enrollment may proceed."""
    check_reference("consent reference", consent_ref)
    check_reference("guardian-consent reference", guardian_consent_ref)
    if faces == 0 and credentials == 0:
        raise ConsentRequired("nothing to enroll: give photos, a key card or a PIN")
    if faces and not consent_ref:
        raise ConsentRequired(
            "face enrollment refused: no consent reference (--consent-ref). "
            "Offer a key card or PIN instead (--card / --pin)."
        )
    if faces and minor and not guardian_consent_ref:
        raise ConsentRequired(
            f"face enrollment of a minor (under {MINOR_AGE}) refused: "
            "no guardian-consent reference (--guardian-consent-ref)"
        )
