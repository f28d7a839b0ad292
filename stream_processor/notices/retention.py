"""Where a notice gets "how long is it kept": the retention rule in force, live.

``RetentionSource`` is the port. Issue 5's policy code implements it over the
compiled policy in force (``CompiledPolicy.retention_ms``), e.g.::

    class PolicyRetention:
        def __init__(self, policies: Callable[[str], CompiledPolicy | None]): ...
        def retention_for(self, tenant, site, kind, purpose):
            p = policies(tenant)
            ms = p.retention_ms(site, kind, purpose) if p else None
            return None if ms is None else timedelta(milliseconds=ms)

Until that is wired, ``PolicyFileRetention`` reads the same policy documents
(YAML, one tenant per file; only ``tenant``, ``retention`` and
``sites.<site>.retention`` are used here). It re-reads the files on every
lookup and parses them again when their bytes changed, so an edited rule
shows on the notice page at the next request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path
from typing import Any, Protocol

import yaml

from stream_processor.errors import ConfigError, InvalidInput


class RetentionSource(Protocol):
    def retention_for(self, tenant: str, site: str, kind: str, purpose: str) -> dt.timedelta | None:
        """The rule in force: ``None`` = no rule (never stored), ``0`` = counted only."""
        ...


_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_DURATION = re.compile(r"^(\d{1,6})([smhdwy])$")


def parse_duration(value: object) -> dt.timedelta:
    """``"30d"`` → timedelta; ``0`` is zero; a bare number is refused (no unit)."""
    if value == 0 or value == "0":
        return dt.timedelta(0)
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if match:
            return dt.timedelta(seconds=int(match.group(1)) * _UNITS_S[match.group(2)])
    raise InvalidInput(f"duration {value!r} must look like 90s, 15m, 12h, 30d, 2w or 3y")


Table = dict[str, dict[str, dt.timedelta]]


def _table(raw: Any, where: str) -> Table:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: retention must map kind → purpose → duration")
    out: Table = {}
    for kind, purposes in raw.items():
        if not isinstance(purposes, dict):
            raise ConfigError(f"{where}.{kind}: must map purpose → duration")
        try:
            out[str(kind)] = {str(p): parse_duration(d) for p, d in purposes.items()}
        except ValueError as exc:
            raise ConfigError(f"{where}.{kind}: {exc}") from exc
    return out


class _TenantRules:
    def __init__(self, doc: dict[str, Any], where: str) -> None:
        self.default = _table(doc.get("retention"), f"{where}: retention")
        self.sites: dict[str, Table] = {}
        for site, spec in (doc.get("sites") or {}).items():
            if isinstance(spec, dict):
                self.sites[str(site)] = _table(spec.get("retention"), f"{where}: sites.{site}")

    def lookup(self, site: str, kind: str, purpose: str) -> dt.timedelta | None:
        site_table = self.sites.get(site, {})
        if purpose in site_table.get(kind, {}):
            return site_table[kind][purpose]
        return self.default.get(kind, {}).get(purpose)


class PolicyFileRetention:
    """``RetentionSource`` over policy YAML files: a file, or a folder of ``*.yaml``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[tuple[str, str], ...] | None = None
        self._rules: dict[str, _TenantRules] = {}

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
        rules: dict[str, _TenantRules] = {}
        for f, data in contents:
            try:
                doc = yaml.safe_load(data.decode("utf-8"))
            except (UnicodeDecodeError, yaml.YAMLError) as exc:
                raise ConfigError(f"{f}: {exc}") from exc
            if not isinstance(doc, dict) or not isinstance(doc.get("tenant"), str):
                raise ConfigError(f"{f}: a policy document names its tenant")
            rules[doc["tenant"]] = _TenantRules(doc, str(f))
        self._rules = rules
        self._stamp = stamp

    def retention_for(self, tenant: str, site: str, kind: str, purpose: str) -> dt.timedelta | None:
        self._reload()
        rules = self._rules.get(tenant)
        return rules.lookup(site, kind, purpose) if rules else None
