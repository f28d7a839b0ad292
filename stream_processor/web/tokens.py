"""Console tokens and browser sessions: one tenant and one role each, stored only as hashes.

A token is 256 random bits, shown once by ``facegate web token create``. The
database keeps its SHA-256 (a fast hash is right for a random 256-bit secret:
there is nothing to guess a dictionary for), so a copy of the database signs
nobody in. A browser pastes the token once and gets a session (another random
secret, also stored hashed) with a CSRF token for its forms; revoking the token
ends its sessions at once.

Roles are ordered: viewer < operator < privacy_officer.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.wire.topics import ID_PATTERN
from stream_processor.errors import FacegateError
from stream_processor.rights.db_port import RightsDb

TOKEN_PREFIX = "fgt_"  # noqa: S105 - a prefix, not a secret: lets scanners find leaked tokens
SESSION_TTL_S = 12 * 3600
_ID = re.compile(ID_PATTERN)
_LABEL = re.compile(r"^[\w .@:/+-]{1,80}$")


class TokenError(FacegateError):
    """A token cannot be created or revoked as asked."""


class Role(enum.StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    PRIVACY_OFFICER = "privacy_officer"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.PRIVACY_OFFICER: 2}


@dataclass(frozen=True, slots=True)
class Token:
    id: str
    tenant: str
    role: Role
    label: str
    created_at_ms: int
    expires_at_ms: int | None
    revoked_at_ms: int | None

    def valid_at(self, now_ms: int) -> bool:
        if self.revoked_at_ms is not None:
            return False
        return self.expires_at_ms is None or now_ms < self.expires_at_ms


@dataclass(frozen=True, slots=True)
class Session:
    token: Token
    csrf: str
    expires_at_ms: int

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


_COLS = "id, tenant, role, label, created_at_ms, expires_at_ms, revoked_at_ms"


_SESSION_SQL = (
    "SELECT s.csrf, s.expires_at_ms, "  # noqa: S608 - column names are constants
    + ", ".join(f"t.{c.strip()}" for c in _COLS.split(","))
    + " FROM web_sessions s JOIN web_tokens t ON t.id = s.token_id WHERE s.hash = ?"
)


def _token(row: tuple[object, ...]) -> Token:
    i, tenant, role, label, created, expires, revoked = row
    return Token(
        str(i),
        str(tenant),
        Role(str(role)),
        str(label),
        int(str(created)),
        None if expires is None else int(str(expires)),
        None if revoked is None else int(str(revoked)),
    )


class TokenBook:
    """Tokens and sessions in the rights database (shared by the CLI and the web processes)."""

    def __init__(self, db: RightsDb, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def create(
        self, tenant: str, role: Role, label: str, ttl_s: float | None = None
    ) -> tuple[str, Token]:
        """A new token; the secret is returned here and never again."""
        if not _ID.fullmatch(tenant):
            raise TokenError(f"tenant {tenant!r} must match {ID_PATTERN}")
        if not _LABEL.fullmatch(label):
            raise TokenError("label: 1-80 letters, digits, spaces or . @ : / + - _")
        if ttl_s is not None and ttl_s <= 0:
            raise TokenError("expiry must be in the future")
        now = self._now_ms()
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = Token(
            secrets.token_hex(6),
            tenant,
            role,
            label,
            now,
            None if ttl_s is None else now + int(ttl_s * 1000),
            None,
        )
        self._db.execute(
            f"INSERT INTO web_tokens ({_COLS}, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
            (token.id, tenant, role.value, label, now, token.expires_at_ms, None, _digest(secret)),
        )
        return secret, token

    def list(self, tenant: str | None = None) -> list[Token]:
        sql = f"SELECT {_COLS} FROM web_tokens"  # noqa: S608
        rows = (
            self._db.execute(sql + " WHERE tenant = ? ORDER BY created_at_ms", (tenant,))
            if tenant
            else self._db.execute(sql + " ORDER BY tenant, created_at_ms")
        )
        return [_token(r) for r in rows.fetchall()]

    def revoke(self, token_id: str) -> Token:
        with self._db.transaction():  # revoked, and its sessions gone, on every host
            cur = self._db.execute(
                "UPDATE web_tokens SET revoked_at_ms = ? WHERE id = ? AND revoked_at_ms IS NULL",
                (self._now_ms(), token_id),
            )
            self._db.execute("DELETE FROM web_sessions WHERE token_id = ?", (token_id,))
        rows = self._db.execute(
            f"SELECT {_COLS} FROM web_tokens WHERE id = ?",  # noqa: S608
            (token_id,),
        ).fetchall()
        if not rows:
            raise TokenError(f"no token {token_id!r}")
        if cur.rowcount == 0:
            raise TokenError(f"token {token_id} was already revoked")
        return _token(rows[0])

    def authenticate(self, secret: str) -> Token | None:
        """The valid token with this secret, else None (unknown, revoked or expired)."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 100:
            return None
        digest = _digest(secret)
        rows = self._db.execute(
            f"SELECT {_COLS}, hash FROM web_tokens WHERE hash = ?",  # noqa: S608
            (digest,),
        ).fetchall()
        # The lookup is by hash (its timing tells nothing of the secret); compare anyway.
        if not rows or not hmac.compare_digest(str(rows[0][-1]), digest):
            return None
        token = _token(rows[0][:-1])
        return token if token.valid_at(self._now_ms()) else None

    def open_session(self, token: Token) -> tuple[str, Session]:
        """A browser session for a signed-in token: (cookie secret, session)."""
        secret = secrets.token_urlsafe(32)
        expires = self._now_ms() + SESSION_TTL_S * 1000
        if token.expires_at_ms is not None:
            expires = min(expires, token.expires_at_ms)
        session = Session(token, secrets.token_urlsafe(32), expires)
        self._db.execute(
            "INSERT INTO web_sessions (hash, token_id, csrf, expires_at_ms) VALUES (?, ?, ?, ?)",
            (_digest(secret), token.id, session.csrf, expires),
        )
        return secret, session

    def session(self, secret: str) -> Session | None:
        if not secret or len(secret) > 100:
            return None
        rows = self._db.execute(_SESSION_SQL, (_digest(secret),)).fetchall()
        if not rows:
            return None
        csrf, expires, *rest = rows[0]
        now = self._now_ms()
        token = _token(tuple(rest))
        if now >= int(expires) or not token.valid_at(now):
            return None
        return Session(token, str(csrf), int(expires))

    def close_session(self, secret: str) -> None:
        self._db.execute("DELETE FROM web_sessions WHERE hash = ?", (_digest(secret),))

    def purge_sessions(self) -> int:
        """Forget expired sessions (housekeeping)."""
        cur = self._db.execute(
            "DELETE FROM web_sessions WHERE expires_at_ms <= ?", (self._now_ms(),)
        )
        return cur.rowcount


def parse_ttl(text: str) -> float:
    """``90d``, ``12h``, ``30m`` → seconds."""
    m = re.fullmatch(r"(\d{1,5})([dhm])", text.strip())
    if not m:
        raise TokenError(f"expiry {text!r}: use a number and d, h or m (e.g. 90d)")
    return int(m.group(1)) * {"d": 86400, "h": 3600, "m": 60}[m.group(2)]
