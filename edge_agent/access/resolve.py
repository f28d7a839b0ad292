"""From a presented credential to an :class:`Outcome` (pure, given the lookup tables).

Card and PIN events carry no consent reference: the reference recorded at
enrollment is the resident's consent to *face* processing, which a card
passage does not use.
"""

from __future__ import annotations

from collections.abc import Mapping

from edge_agent.access.inputs import Credential
from edge_agent.decision import Outcome, Subject, credential, manual_open
from edge_agent.gallery.credentials import CredentialHasher
from edge_agent.wire import EventKind


def resolve(
    cred: Credential,
    hasher: CredentialHasher,
    cards: Mapping[str, Subject],
    pins: Mapping[str, Subject],
) -> Outcome:
    if cred.type == "manual":
        return manual_open(cred.value)
    if cred.type == "card":
        who = cards.get(hasher.card(cred.value))
        return credential(EventKind.KEY_CARD, who.pseudonym if who else None, None)
    who = pins.get(hasher.pin(cred.value))
    return credential(EventKind.PIN, who.pseudonym if who else None, None)
