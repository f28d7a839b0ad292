"""Handing over a key card, as the cloud carries it out (pure: what to write, not writing it).

A resident who asked for a card instead of their face gets, when the card is handed over:

- a withdrawal of their face consent at the site (every purpose): the processors stop
  storing their face events and tell every gate to drop the templates;
- a ``register_card`` command on the site's downlink: every gate of the site removes the
  face templates and opens for the card from then on.

The card number never leaves the office: the command and the rights DB carry only its
keyed hash under the site secret (``CredentialHasher.card``, what the gate computes from
what its reader reads).
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.gallery.credentials import CredentialHasher
from edge_agent.pseudonym import SiteSecret
from edge_agent.wire.commands import CommandType, EdgeCommand
from stream_processor.errors import InvalidInput
from stream_processor.policy.consent import ALL_PURPOSES, ConsentRecord, ConsentStatus, GivenBy
from stream_processor.processor.ledger import deterministic_uuid7

#: Card numbers as readers report them: decimal or hex, no spaces (bounded length).
_MAX_CARD = 32


def card_digest(secret: SiteSecret, tenant: str, site: str, number: str) -> str:
    """The card as the site's gates store it; the secret must be this site's."""
    if (secret.tenant, secret.site) != (tenant, site):
        raise InvalidInput(
            f"the site secret is for {secret.tenant}/{secret.site}, not {tenant}/{site}"
        )
    value = number.strip()
    if not value or len(value) > _MAX_CARD or not value.isalnum():
        raise InvalidInput(f"a card number is 1-{_MAX_CARD} letters or digits")
    return CredentialHasher(secret.key).card(value)


@dataclass(frozen=True)
class Fulfilment:
    """What handing over the card writes: the consent withdrawal and the gate command."""

    withdrawal: ConsentRecord
    command: EdgeCommand


def fulfilment(
    request_id: str,
    requested_at_ms: int,
    tenant: str,
    site: str,
    subject: str,
    card: str,
    now_ms: int,
) -> Fulfilment:
    """The records for one fulfilled request (the command id derives from the request, so
    a retried fulfilment sends the same command)."""
    withdrawal = ConsentRecord(
        tenant=tenant, site=site, subject=subject, purpose=ALL_PURPOSES,
        status=ConsentStatus.WITHDRAWN, given_by=GivenBy.SELF, at_ms=now_ms,
    )  # fmt: skip
    command = EdgeCommand(
        schema_version=1,
        command_id=deterministic_uuid7(requested_at_ms, b"keycard/" + request_id.encode()),
        type=CommandType.REGISTER_CARD,
        tenant=tenant,
        site=site,
        subject=subject,
        issued_at_ms=now_ms,
        card=card,
    )
    return Fulfilment(withdrawal, command)


__all__ = ["Fulfilment", "card_digest", "fulfilment"]
