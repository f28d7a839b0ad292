"""The policy document operators write (YAML), validated strictly with pydantic.

Example::

    tenant: acme
    legal_ceiling: 3y            # no rule may exceed it (and it may not exceed 3y)
    purposes:
      access_control: {}        # shipped: fixed description, face events at most 30d
      parcel_lockers:           # custom: a description and a legal basis, both on the notice
        description: let couriers leave parcels at the lockers
        legal_basis: the residents' service contract, clause 4 (parcel service)
    camera_purposes: [access_control]   # allowed at every camera unless a site says otherwise
    retention:                  # per event kind, per purpose; 0 = never stored, counted only
      face_match:   {access_control: 30d}
      key_card:     {access_control: 90d}
      pin:          {access_control: 90d}
      manual_open:  {access_control: 90d}
      unknown_face: {access_control: 0}
    sites:
      site-1:
        retention: {face_match: {access_control: 7d}}
        cameras: {gate-2/cam-1: []}      # "gate" or "gate/device" → allowed purposes
    transport: {raw_retention: 1d, dlq_retention: 7d}
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from edge_agent.wire.events import EventKind
from edge_agent.wire.topics import ID_PATTERN
from stream_processor.errors import InvalidInput
from stream_processor.policy.durations import format_duration_ms, parse_duration_ms
from stream_processor.policy.purpose import (
    SHIPPED_PURPOSES,
    purpose_problems,
    refused_features_in,
)

#: The ceiling no tenant's own legal ceiling may exceed (3 years).
MAX_LEGAL_CEILING = "3y"
MAX_LEGAL_CEILING_MS = parse_duration_ms(MAX_LEGAL_CEILING)
#: Unknown faces are counted, never stored individually.
NEVER_STORED_KINDS = frozenset({EventKind.UNKNOWN_FACE})
#: A camera key of a site's ``cameras``: "gate" or "gate/device", each an id.
_CAMERA_KEY = re.compile(ID_PATTERN.strip("^$") + "(/" + ID_PATTERN.strip("^$") + ")?")

Duration = str | int
RetentionTable = dict[EventKind, dict[str, Duration]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _RefusesByDesign(_Strict):
    """A part of a policy where a feature refused by design may be asked for."""

    @model_validator(mode="before")
    @classmethod
    def _refused(cls, data: Any) -> Any:
        if found := refused_features_in(data):
            raise ValueError("refused by design: " + "; ".join(found))
        return data


class PolicyInvalid(InvalidInput):
    """A policy document is refused; ``problems`` holds every reason found in one pass."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        n = len(problems)
        super().__init__(f"{n} problem{'s' if n != 1 else ''}: " + "; ".join(problems))


class PurposeSpec(_Strict):
    description: str | None = Field(
        None,
        min_length=10,
        max_length=500,
        description="what the data is used for, in plain words (fixed for a shipped purpose, "
        "required for a custom one; printed on the camera notice)",
    )
    legal_basis: str | None = Field(
        None,
        min_length=10,
        max_length=300,
        description="the legal basis of a custom purpose (printed on the camera notice)",
    )


class TransportPolicy(_Strict):
    raw_retention: Duration = Field(
        "1d", description="how long raw events stay in the Kafka raw topic (a buffer only)"
    )
    dlq_retention: Duration = Field(
        "7d", description="how long refused input stays in the dead-letter topic"
    )

    @field_validator("raw_retention", "dlq_retention")
    @classmethod
    def _at_least_a_minute(cls, v: Duration) -> Duration:
        if parse_duration_ms(v) < 60_000:
            raise ValueError("Kafka retention must be at least 1m")
        return v


class SitePolicy(_RefusesByDesign):
    retention: RetentionTable = Field(
        default_factory=dict, description="overrides of the tenant's retention for this site"
    )
    camera_purposes: list[str] | None = Field(
        None, description="purposes allowed at this site's cameras (default: the tenant's)"
    )
    cameras: dict[str, list[str]] = Field(
        default_factory=dict,
        description='allowed purposes per camera: key "gate" or "gate/device"',
    )

    @field_validator("cameras")
    @classmethod
    def _camera_keys(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for key in v:
            if not _CAMERA_KEY.fullmatch(key):
                raise ValueError(f'camera {key[:80]!r} must be "gate" or "gate/device" (ids)')
        return v


class PolicyDocument(_RefusesByDesign):
    tenant: str = Field(pattern=ID_PATTERN, description="the tenant (property firm) it governs")
    legal_ceiling: Duration = Field(
        MAX_LEGAL_CEILING, description=f"no retention may exceed this; at most {MAX_LEGAL_CEILING}"
    )
    purposes: dict[str, PurposeSpec] = Field(
        description="every purpose that exists for this tenant, each described"
    )
    camera_purposes: list[str] = Field(
        description="purposes allowed at every camera unless a site or camera says otherwise"
    )
    retention: RetentionTable = Field(
        description="retention per event kind and purpose; 0 = never stored, counted only; "
        "a kind/purpose without a rule is never stored"
    )
    sites: dict[str, SitePolicy] = Field(default_factory=dict, description="per-site overrides")
    transport: TransportPolicy = Field(
        default_factory=lambda: TransportPolicy(), description="Kafka topic retention"
    )

    @field_validator("purposes")
    @classmethod
    def _named(cls, v: dict[str, PurposeSpec]) -> dict[str, PurposeSpec]:
        if not v:
            raise ValueError("at least one purpose must be declared")
        return v

    def description_of(self, purpose: str) -> str | None:
        """The purpose's description: the fixed one of a shipped purpose, else the policy's."""
        shipped = SHIPPED_PURPOSES.get(purpose)
        if shipped is not None:
            return shipped.description
        spec = self.purposes.get(purpose)
        return spec.description if spec is not None else None

    @field_validator("sites")
    @classmethod
    def _site_ids(cls, v: dict[str, SitePolicy]) -> dict[str, SitePolicy]:
        for site in v:
            # fullmatch: ``$`` alone also matches before a trailing newline.
            if not re.fullmatch(ID_PATTERN, site):
                raise ValueError(f"site id {site[:80]!r} must match {ID_PATTERN}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> PolicyDocument:
        ceiling = parse_duration_ms(self.legal_ceiling)
        if ceiling > MAX_LEGAL_CEILING_MS:
            raise ValueError(
                f"legal_ceiling {self.legal_ceiling} exceeds the maximum {MAX_LEGAL_CEILING}"
            )
        errors = [
            p for n, spec in self.purposes.items()
            for p in purpose_problems(n, spec.description, spec.legal_basis)
        ]  # fmt: skip

        def check_purposes(where: str, names: list[str]) -> None:
            errors.extend(
                f"{where}: purpose {n!r} is not declared under purposes"
                for n in names
                if n not in self.purposes
            )

        def check_retention(where: str, table: RetentionTable) -> None:
            for kind, per_purpose in table.items():
                check_purposes(f"{where}.{kind.value}", list(per_purpose))
                for purpose, raw in per_purpose.items():
                    try:
                        ms = parse_duration_ms(raw)
                    except ValueError as exc:
                        errors.append(f"{where}.{kind.value}.{purpose}: {exc}")
                        continue
                    if ms > ceiling:
                        errors.append(
                            f"{where}.{kind.value}.{purpose}: {raw} exceeds the legal ceiling "
                            f"{format_duration_ms(ceiling)}"
                        )
                    if kind is EventKind.FACE_MATCH:
                        errors.extend(_face_cap(f"{where}.{kind.value}.{purpose}", purpose, ms))
                    if kind in NEVER_STORED_KINDS and ms != 0:
                        errors.append(
                            f"{where}.{kind.value}.{purpose}: unknown faces are never stored "
                            "individually, only counted; the retention must be 0"
                        )

        check_purposes("camera_purposes", self.camera_purposes)
        check_retention("retention", self.retention)
        for site, sp in self.sites.items():
            check_retention(f"sites.{site}.retention", sp.retention)
            check_purposes(f"sites.{site}.camera_purposes", sp.camera_purposes or [])
            for camera, names in sp.cameras.items():
                check_purposes(f"sites.{site}.cameras.{camera}", names)
        for name in ("raw_retention", "dlq_retention"):
            raw = getattr(self.transport, name)
            if parse_duration_ms(raw) > ceiling:
                errors.append(f"transport.{name}: {raw} exceeds the legal ceiling")
        if errors:
            raise PolicyInvalid(errors)
        return self


def _face_cap(where: str, purpose: str, ms: int) -> list[str]:
    shipped = SHIPPED_PURPOSES.get(purpose)
    if shipped is None or ms <= shipped.max_face_retention_ms:
        return []
    cap = format_duration_ms(shipped.max_face_retention_ms)
    return [f"{where}: {format_duration_ms(ms)} exceeds the {cap} {purpose} allows for face events"]


def _problems_of(exc: ValidationError) -> list[str]:
    out: list[str] = []
    for err in exc.errors():
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, PolicyInvalid):
            out.extend(cause.problems)
        else:
            out.append(f"{'.'.join(str(p) for p in err['loc']) or '(document)'}: {err['msg']}")
    return out


def check_policy(data: Any) -> PolicyDocument:
    """Validate a parsed document, reporting every problem in one pass (``PolicyInvalid``).

    Refused features are taken out before the model sees them so that the rest
    of the document is still checked; purpose declarations are checked here too,
    because the model's cross-checks only run once every field parses.
    """
    if not isinstance(data, dict):
        raise PolicyInvalid(["a policy document is a YAML mapping"])
    problems = [f"refused by design: {p}" for p in refused_features_in(data)]
    data = {k: v for k, v in data.items() if not refused_features_in({k: v})}
    sites = data.get("sites")
    if isinstance(sites, dict):
        cleaned: dict[Any, Any] = {}
        for site, sp in sites.items():
            problems += [f"sites.{site}: refused by design: {p}" for p in refused_features_in(sp)]
            cleaned[site] = (
                {k: v for k, v in sp.items() if not refused_features_in({k: v})}
                if isinstance(sp, dict) else sp
            )  # fmt: skip
        data["sites"] = cleaned
    purposes = data.get("purposes")
    if isinstance(purposes, dict):
        for name, spec in purposes.items():
            spec = spec if isinstance(spec, dict) else {}
            problems += purpose_problems(
                str(name), spec.get("description"), spec.get("legal_basis")
            )
    try:
        doc = PolicyDocument.model_validate(data)
    except ValidationError as exc:
        problems += [p for p in _problems_of(exc) if p not in problems]
    if problems:
        raise PolicyInvalid(problems)
    return doc


def parse_policy_yaml(text: str) -> PolicyDocument:
    """Parse and validate; raises ``PolicyInvalid`` (a ``ValueError``) with every problem."""
    return check_policy(yaml.safe_load(text))
