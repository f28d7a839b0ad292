"""Key-card numbers and PINs are stored only as keyed hashes under the site secret."""

from __future__ import annotations

import hashlib
import hmac

from edge_agent.errors import InvalidInput


class CredentialHasher:
    def __init__(self, site_secret: bytes) -> None:
        if len(site_secret) < 16:
            raise InvalidInput("site secret must be at least 16 bytes")
        self._secret = site_secret

    def _h(self, domain: str, value: str) -> str:
        mac = hmac.new(self._secret, f"{domain}:{value}".encode(), hashlib.sha256)
        return mac.hexdigest()[:40]

    def card(self, card_id: str) -> str:
        return "c1_" + self._h("card", card_id.strip())

    def pin(self, pin: str) -> str:
        return "p1_" + self._h("pin", pin.strip())
