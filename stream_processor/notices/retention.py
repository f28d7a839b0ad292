"""Where a notice gets "how long is it kept": the retention rule in force, live.

``RetentionSource`` is the port; both sources compile policy documents with
the processors' own compiler and answer through :func:`retention_of`, so a
notice shows exactly the rule the processors enforce.
``notices.policy_retention.PolicyTopicRetention`` follows the policies topic
(``FACEGATE_WEB_RETENTION_SOURCE=kafka``); ``PolicyFileRetention`` reads policy
YAML files (one tenant per file). It re-reads the files on every lookup and
compiles them again when their bytes changed, so an edited rule shows on the
notice page at the next request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Protocol

from stream_processor.errors import ConfigError
from stream_processor.policy.document import parse_policy_yaml
from stream_processor.policy.retention import CompiledPolicy


class RetentionSource(Protocol):
    def retention_for(self, tenant: str, site: str, kind: str, purpose: str) -> dt.timedelta | None:
        """The rule in force: ``None`` = no rule (never stored), ``0`` = counted only."""
        ...


def retention_of(
    policy: CompiledPolicy | None, site: str, kind: str, purpose: str
) -> dt.timedelta | None:
    """The rule a compiled policy sets, as a notice shows it: ``None`` when there is
    no policy, no rule or the kind is unknown to it (never stored)."""
    if policy is None:
        return None
    try:
        ms = policy.retention_ms(site, kind, purpose)
    except ValueError:  # a kind the policy does not know
        return None
    return None if ms is None else dt.timedelta(milliseconds=ms)


class PolicyFileRetention:
    """``RetentionSource`` over policy YAML files: a file, or a folder of ``*.yaml``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[tuple[str, str], ...] | None = None
        self._policies: dict[str, CompiledPolicy] = {}

    def _files(self) -> list[Path]:
        if self.path.is_dir():
            return sorted([*self.path.glob("*.yaml"), *self.path.glob("*.yml")])
        return [self.path] if self.path.exists() else []

    def _reload(self) -> None:
        # Compare the bytes, not mtimes: an edit within one mtime tick must show too.
        # Policy files are small; parsing happens only when they changed.
        contents: list[tuple[Path, bytes]] = []
        for f in self._files():
            try:
                contents.append((f, f.read_bytes()))
            except OSError as exc:
                raise ConfigError(f"{f}: {exc}") from exc
        stamp = tuple((str(f), hashlib.sha256(data).hexdigest()) for f, data in contents)
        if stamp == self._stamp:
            return
        policies: dict[str, CompiledPolicy] = {}
        for f, data in contents:
            try:
                document = parse_policy_yaml(data.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:  # pydantic's errors are ValueErrors
                raise ConfigError(f"{f}: {exc}") from exc
            policies[document.tenant] = CompiledPolicy(document)
        self._policies = policies
        self._stamp = stamp

    def retention_for(self, tenant: str, site: str, kind: str, purpose: str) -> dt.timedelta | None:
        self._reload()
        return retention_of(self._policies.get(tenant), site, kind, purpose)
