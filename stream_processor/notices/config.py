"""The camera registry: one YAML file describing every site's cameras and who answers for them.

Validated strictly (``facegate notice validate-config``). See
``deploy/config/cameras.example.yaml``. What the device processes and what
leaves it are not configurable: they are stated by facegate, because they are
true by construction (anonymized events only).
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from edge_agent.wire.events import PURPOSE_PATTERN
from edge_agent.wire.topics import ID_PATTERN
from stream_processor.errors import ConfigError

log = logging.getLogger(__name__)

ID = ID_PATTERN
PURPOSE = PURPOSE_PATTERN
Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Strict):
    """The same text in Chinese and English (both required)."""

    zh: str = Field(min_length=1, max_length=2000, description="Chinese text")
    en: str = Field(min_length=1, max_length=2000, description="English text")

    def get(self, lang: Lang) -> str:
        return self.zh if lang == "zh" else self.en


class Contact(_Strict):
    phone: str | None = Field(None, max_length=40, description="phone number")
    email: str | None = Field(
        None, max_length=200, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", description="e-mail address"
    )
    address: Text | None = Field(None, description="postal or office address")
    hours: Text | None = Field(None, description="office hours")

    @model_validator(mode="after")
    def _something(self) -> Contact:
        if not (self.phone or self.email or self.address):
            raise ValueError("a contact needs a phone, an e-mail or an address")
        return self


class Party(_Strict):
    name: Text = Field(description="legal name of the company or body")
    contact: Contact = Field(description="how to reach it")


class PurposeNotice(_Strict):
    id: str = Field(pattern=PURPOSE, description="the purpose's name in the policy")
    description: Text = Field(description="what the data is used for, in plain words")
    legal_basis: Text | None = Field(
        None,
        description="the purpose's own legal basis, as in the policy; required for a custom "
        "purpose (one facegate does not ship), printed under it",
        # Absent stays absent in the notice's content, so notices without it keep their version.
        exclude_if=lambda v: v is None,
    )


class Camera(_Strict):
    id: str = Field(pattern=ID, description="camera id, unique within the site (in the URL)")
    gate: str = Field(pattern=ID, description="the gate it belongs to (as in events)")
    location: Text = Field(description="where it hangs, so a reader knows it is this one")
    installed_on: dt.date = Field(description="installation date")
    purposes: list[str] = Field(min_length=1, description="purposes of this camera (site's ids)")
    face_recognition: bool = Field(True, description="false for a camera that only records cards")
    device: str | None = Field(
        None,
        pattern=ID,
        description="the gate device's id (as in events), to check purposes against the policy",
    )


class SiteNotice(_Strict):
    tenant: str = Field(pattern=ID, description="the property firm's tenant id")
    site: str = Field(pattern=ID, description="the site id")
    name: Text = Field(description="the compound's name")
    operator: Party = Field(description="who runs the cameras (the personal-information handler)")
    installer: Party = Field(description="who installed them")
    privacy_contact: Contact = Field(description="whom to ask about personal information")
    legal_basis: Text = Field(description="the legal basis, e.g. separate consent (PIPL art. 29)")
    storage: Text = Field(description="where events are stored (company, country, region)")
    keycard: Text = Field(description="how to get a key card instead of face recognition")
    withdraw: Text = Field(description="how to withdraw consent")
    erasure: Text = Field(description="how to ask for erasure")
    timezone: str = Field(
        "Asia/Shanghai", description="IANA time zone the site's pages state times in"
    )
    purposes: list[PurposeNotice] = Field(min_length=1, description="purposes in use at the site")
    cameras: list[Camera] = Field(min_length=1, description="the site's cameras")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name, e.g. Asia/Shanghai)"
            ) from exc
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SiteNotice:
        ids = [c.id for c in self.cameras]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"camera ids must be unique within a site: {dupes}")
        known = {p.id for p in self.purposes}
        if len(known) != len(self.purposes):
            raise ValueError("purpose ids must be unique")
        for cam in self.cameras:
            unknown = sorted(set(cam.purposes) - known)
            if unknown:
                raise ValueError(
                    f"camera {cam.id}: purposes {unknown} are not declared for the site"
                )
        return self

    def camera(self, camera_id: str) -> Camera | None:
        return next((c for c in self.cameras if c.id == camera_id), None)

    def purpose(self, purpose_id: str) -> PurposeNotice:
        return next(p for p in self.purposes if p.id == purpose_id)


class CameraRegistry(_Strict):
    version: Literal[1] = Field(description="format version of this file")
    sites: list[SiteNotice] = Field(description="one entry per site")

    @model_validator(mode="after")
    def _unique_sites(self) -> CameraRegistry:
        keys = [(s.tenant, s.site) for s in self.sites]
        if len(set(keys)) != len(keys):
            raise ValueError("each (tenant, site) may appear once")
        return self

    def site(self, tenant: str, site: str) -> SiteNotice | None:
        return next((s for s in self.sites if s.tenant == tenant and s.site == site), None)

    def sites_named(self, site: str, tenant: str | None = None) -> list[SiteNotice]:
        return [s for s in self.sites if s.site == site and (tenant is None or s.tenant == tenant)]


#: The registry before the operator writes one.
_NONE_YET = CameraRegistry(version=1, sites=[])


def load_registry(path: Path) -> CameraRegistry:
    """Read and validate; raises ConfigError naming the file and the fields."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    try:
        return CameraRegistry.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{path}: invalid camera registry: {problems}") from exc


class RegistryFile:
    """The registry, re-read when the file changes (a new camera shows without a restart).

    A broken edit does not take the notices down: the last valid registry stays
    in use, and ``last_error`` says what is wrong (``/healthz`` reports it).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._registry: CameraRegistry | None = None
        self.last_error: str | None = None
        #: No registry file and none read before: no camera is registered yet. That is
        #: a state to show (empty lists, how to register), not a fault.
        self.missing = False

    def get(self) -> CameraRegistry:
        try:
            st = self.path.stat()
        except FileNotFoundError as exc:
            if self._registry is not None and not self.missing:
                # Removed while serving: the cameras are still up, so are their notices.
                return self._keep(ConfigError(f"{self.path}: {exc}"))
            self._registry, self._stamp, self.last_error = _NONE_YET, None, None
            self.missing = True
            return self._registry
        except OSError as exc:
            return self._keep(ConfigError(f"{self.path}: {exc}"))
        self.missing = False
        stamp = (st.st_mtime_ns, st.st_size)
        if self._registry is None or stamp != self._stamp:
            try:
                registry = load_registry(self.path)
            except ConfigError as exc:
                self._stamp = stamp
                return self._keep(exc)
            self._registry, self._stamp, self.last_error = registry, stamp, None
        return self._registry

    def _keep(self, exc: ConfigError) -> CameraRegistry:
        self.last_error = str(exc)
        if self._registry is None:
            raise exc
        log.error("camera registry not reloaded, keeping the last valid one: %s", exc)
        return self._registry
