"""The dead-letter record: why an input was refused, where it came from, how big it
was, a keyed digest of it and the names of its top-level fields — never a byte
of its values.

A refused payload may carry a face template, a name or an id number: the
dead-letter topic is kept for days and read by operators, so nothing of the
payload's content is copied there. The digest (HMAC-SHA256 under the host's
dead-letter key) lets an operator see that the same payload was refused again,
or check a payload they hold, without the letter revealing it. The payload
itself stays, for the raw topic's retention, at ``source_topic``'s coordinates
when it came from Kafka.

Every writer (the bridge, the processor's quarantine, the other consumers'
quarantine) builds its letter here.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

import msgspec

#: The dead-letter key's file under the state directory's ``secrets/``.
KEY_FILE = "dead-letter.key"
#: At most this many field names are kept, each at most 32 characters.
MAX_FIELDS = 32
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")
#: What stands for a field name that is itself suspect (too long, odd characters).
ODD_FIELD = "<odd>"
#: Quoted text in an error's detail that is not a plain field name may be a value.
_QUOTED = re.compile(r"(`|'|\")(.*?)\1", re.S)
_PSEUDONYM = re.compile(r"ps1_[0-9a-fA-F]{4,32}")
_DETAIL_TOKEN = re.compile(r"^[A-Za-z0-9_.$\[\]/-]{0,48}$")
#: Long digit runs (id and phone numbers) and long base64/hex runs (templates).
_LONG_RUN = re.compile(r"[0-9]{8,}|[A-Za-z0-9+/=_-]{24,}")
#: A device path (tenant/site/gate/device, a topic) is long but names no person.
_ID_PATH = re.compile(r"[a-z][a-z0-9_.-]*(/[a-z0-9][a-z0-9_.-]*)+")
_MAX_DETAIL = 300


def _load_or_create_key(path: Path) -> bytes:
    """The key at ``path``, made if absent; published whole (written aside, then linked),
    so a process starting at the same moment never reads a half-written key."""
    if path.exists():
        return path.read_bytes()
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secrets.token_bytes(32))
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process published its key first: use that one
    finally:
        tmp.unlink()
    return path.read_bytes()


@functools.cache
def host_key() -> bytes:
    """The host's dead-letter key: ``<state dir>/secrets/dead-letter.key``.

    The secrets directory is made by the stack's set-up (mode 0700); where it
    does not exist (a unit test, a tool run outside any state directory) the key
    is random for this process, so its digests only match each other.
    """
    state = Path(os.environ.get("FACEGATE_STATE_DIR", ".facegate")).resolve()
    secrets_dir = state / "secrets"
    if not secrets_dir.is_dir():
        return secrets.token_bytes(32)
    return _load_or_create_key(secrets_dir / KEY_FILE)


def keyed_digest(raw: bytes, key: bytes) -> str:
    return "hmac-sha256:" + hmac.new(key, raw, hashlib.sha256).hexdigest()[:32]


def fields_seen(raw: bytes) -> list[str]:
    """The top-level field names of a JSON object, suspect names masked; else none."""
    try:
        obj = msgspec.json.decode(raw, type=dict[str, msgspec.Raw])
    # UnicodeDecodeError: msgspec raises it bare for invalid UTF-8 in a key.
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, UnicodeDecodeError):
        return []
    names = sorted({k if _FIELD.fullmatch(k) else ODD_FIELD for k in obj})
    return names[:MAX_FIELDS]


def _unless_id_path(m: re.Match[str]) -> str:
    return m.group(0) if _ID_PATH.fullmatch(m.group(0)) else "<redacted>"


def scrub_detail(detail: str) -> str:
    """The refusal's detail without quoted values: only plain names stay quoted."""

    def keep(m: re.Match[str]) -> str:
        inner = m.group(2)
        return (
            m.group(0) if _DETAIL_TOKEN.fullmatch(inner) else f"{m.group(1)}<redacted>{m.group(1)}"
        )

    text = _PSEUDONYM.sub("ps1_<redacted>", detail[: _MAX_DETAIL * 2])
    text = _LONG_RUN.sub(_unless_id_path, _QUOTED.sub(keep, text))
    return text[:_MAX_DETAIL]


class DeadLetter(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    reason: str
    detail: str
    source_topic: str
    received_at_ms: int
    stage: str
    raw_len: int
    #: HMAC-SHA256 of the whole payload under the host's dead-letter key (128 bits).
    raw_digest: str
    #: Top-level field names of a JSON object payload (values never kept).
    fields_seen: list[str]
    #: Where the refused record sits in ``source_topic`` when it came from Kafka (an
    #: operator re-reads it there while the topic keeps it); null for MQTT input.
    source_partition: int | None = None
    source_offset: int | None = None

    @classmethod
    def build(
        cls,
        raw: bytes,
        reason: str,
        detail: str,
        source: str,
        now_ms: int,
        stage: str,
        *,
        partition: int | None = None,
        offset: int | None = None,
        key: bytes | None = None,
    ) -> DeadLetter:
        return cls(
            reason=reason,
            detail=scrub_detail(detail),
            source_topic=source,
            received_at_ms=now_ms,
            stage=stage,
            raw_len=len(raw),
            raw_digest=keyed_digest(raw, key if key is not None else host_key()),
            fields_seen=fields_seen(raw),
            source_partition=partition,
            source_offset=offset,
        )

    def encode(self) -> bytes:
        return msgspec.json.encode(self)


def decode_dead_letter(data: bytes) -> DeadLetter:
    return msgspec.json.decode(data, type=DeadLetter)
