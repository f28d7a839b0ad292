"""A key card handed over on request, as the gate carries it out (pure, on the gallery data).

The resident chose a card instead of their face: the face templates go (the data key
with them, as for a withdrawal), the card's keyed hash is added, so the gate opens for
the card and no longer recognises the face. A resident the gate has never seen gets a
card-only record. The card number never reaches the device: only its keyed hash.
"""

from __future__ import annotations

from edge_agent.errors import InvalidInput
from edge_agent.gallery.model import GalleryData, Record, Removal

#: Cards one resident may hold on a gate (a lost card is replaced, not piled up).
MAX_CARDS_PER_RESIDENT = 4


def register_card(data: GalleryData, pseudonym: str, card: str, now_ms: int) -> Removal:
    """Face templates of ``pseudonym`` removed, ``card`` (a keyed hash) registered."""
    for other in data.records:
        if card in other.cards and other.pseudonym != pseudonym:
            raise InvalidInput("card_held_by_another_resident")
    record = data.find(pseudonym)
    if record is None:
        record = Record(pseudonym=pseudonym, enrolled_at_ms=now_ms)
        data.records.append(record)
    removed = len(record.templates)
    record.templates = []
    record.key_id = None
    record.consent_ref = None
    record.guardian_consent_ref = None
    if card not in record.cards:
        if len(record.cards) >= MAX_CARDS_PER_RESIDENT:
            raise InvalidInput("too_many_cards")
        record.cards.append(card)
    return Removal(removed, False)


__all__ = ["MAX_CARDS_PER_RESIDENT", "register_card"]
