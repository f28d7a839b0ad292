"""Per-site pseudonyms: a keyed hash of the resident id under a secret that never leaves the site.

    pseudonym = "ps1_" + hex(HMAC-SHA256(site key, "facegate/pseudonym/v1" ‖ tenant ‖ site ‖
                                         resident id)[:16])

with each part length-prefixed (4 bytes, big-endian), so no two different
(tenant, site, id) triples hash the same input and a key reused by mistake at
another site still gives unrelated pseudonyms. Without the site key a
pseudonym cannot be reversed or matched to a guessed id.

A site secret names the tenant and site it was made for. It comes to exist
in one way only: ``facegate site secret create`` at the site office, and it
reaches a gate through ``facegate site secret export-for-gate``. A gate
without its site's secret refuses to start: a secret it made up itself would
give pseudonyms no erasure request could ever name.

    facegate-site-secret v1
    tenant <tenant>
    site <site>
    key <base64 of 32 random bytes>
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import struct
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.errors import ConfigError, InvalidInput

PREFIX = "ps1_"
DOMAIN = "facegate/pseudonym/v1"
CONSENT_PREFIX = "cr1_"
CONSENT_DOMAIN = "facegate/consent-ref/v1"
SECRET_BYTES = 32
HEADER = "facegate-site-secret v1"
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
HOW_TO_GET_ONE = (
    "the site office makes it (facegate site secret create --tenant T --site S --out FILE) "
    "and gives it to each gate (facegate site secret export-for-gate)"
)


def _framed(*parts: str) -> bytes:
    out = bytearray()
    for part in parts:
        data = part.encode("utf-8")
        out += struct.pack(">I", len(data)) + data
    return bytes(out)


def derive(key: bytes, tenant: str, site: str, resident_id: str) -> str:
    """The pseudonym of ``resident_id`` at ``tenant``/``site`` under ``key``."""
    if len(key) < 16:
        raise InvalidInput("site secret must be at least 16 bytes")
    digest = hmac.new(key, _framed(DOMAIN, tenant, site, resident_id), hashlib.sha256).digest()
    return PREFIX + digest[:16].hex()


@dataclass(frozen=True)
class SiteSecret:
    """A site's pseudonym key, bound to the tenant and site it was made for."""

    tenant: str
    site: str
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        for name, value in (("tenant", self.tenant), ("site", self.site)):
            if not _ID.fullmatch(value):
                raise InvalidInput(f"site secret: {name} {value!r} is not an id")
        if len(self.key) < 16:
            raise InvalidInput("site secret must be at least 16 bytes")

    def text(self) -> str:
        key = base64.b64encode(self.key).decode()
        return f"{HEADER}\ntenant {self.tenant}\nsite {self.site}\nkey {key}\n"

    @classmethod
    def parse(cls, text: str, where: str) -> SiteSecret:
        lines = text.strip().splitlines()
        fields = dict(line.split(" ", 1) for line in lines[1:] if " " in line)
        if not lines or lines[0] != HEADER or set(fields) != {"tenant", "site", "key"}:
            raise ConfigError(f"{where} is not a facegate site secret; {HOW_TO_GET_ONE}")
        try:
            key = base64.b64decode(fields["key"], validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"{where}: the key is not base64") from None
        return cls(fields["tenant"], fields["site"], key)


def pseudonym(secret: SiteSecret, resident_id: str) -> str:
    """The resident's pseudonym at the secret's site."""
    return derive(secret.key, secret.tenant, secret.site, resident_id)


def consent_digest(secret: SiteSecret, reference: str) -> str:
    """What a gate keeps and sends of a consent form's reference: its site-keyed digest."""
    mac = hmac.new(
        secret.key, _framed(CONSENT_DOMAIN, secret.tenant, secret.site, reference), hashlib.sha256
    )
    return CONSENT_PREFIX + mac.digest()[:16].hex()


def new_site_secret(tenant: str, site: str) -> SiteSecret:
    return SiteSecret(tenant, site, secrets.token_bytes(SECRET_BYTES))


def write_site_secret(secret: SiteSecret, path: Path) -> None:
    """Write ``secret`` to a new file (mode 0600); an existing file is never replaced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(
            f"{path} exists; a new secret would orphan every pseudonym made with it"
        ) from None
    with os.fdopen(fd, "w") as fh:
        fh.write(secret.text())


def load_site_secret(path: Path, tenant: str | None = None, site: str | None = None) -> SiteSecret:
    """Read a site secret; with ``tenant``/``site``, it must be theirs."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no site secret at {path}: {HOW_TO_GET_ONE}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the site secret {path}: {exc}") from None
    secret = SiteSecret.parse(text, str(path))
    wanted = (tenant or secret.tenant, site or secret.site)
    if (secret.tenant, secret.site) != wanted:
        raise ConfigError(
            f"{path} is the site secret of {secret.tenant}/{secret.site}, "
            f"not of {wanted[0]}/{wanted[1]}"
        )
    return secret
