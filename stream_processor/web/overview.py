"""The firm overview as pure functions over the per-minute aggregates and device rows.

One call builds what the overview API, the dashboard and the live stream all
show, so they cannot disagree. No pseudonym is ever an input here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from pydantic import BaseModel, Field

from stream_processor.store.base import AggregateKey
from stream_processor.web.devices import UNREACHABLE_AFTER_S, DeviceRow

MINUTE_MS = 60_000
STEP_MS = {"minute": MINUTE_MS, "hour": 3_600_000, "day": 86_400_000}
FACE_KINDS = frozenset({"face_match", "unknown_face"})


class DeviceHealth(BaseModel):
    site: str
    gate: str
    device: str
    online: bool
    outbox_growing: bool = Field(description="outbox depth grew in the last 3 statuses")
    last_seen_ms: int
    offline_since_ms: int | None = Field(description="last status of an offline device")
    unreachable: bool = Field(
        False, description="offline past FACEGATE_WEB_DEVICE_UNREACHABLE_AFTER_S: an alarm"
    )
    outbox_depth: int
    oldest_queued_age_s: float
    gallery_templates: int
    models: list[str]
    frames_per_s: float
    decision_latency_ms: float
    software_version: str


class SiteFigures(BaseModel):
    site: str
    gates: list[str]
    events_last_minute: dict[str, int] = Field(description="events of the last full minute by kind")
    events_last_hour: int
    per_minute: list[int] = Field(description="events per minute, oldest first (the last hour)")
    face_share: float | None = Field(description="face events / all events, last hour")
    denial_rate: float | None = Field(description="denied / all events, last hour")
    discards: dict[str, int] = Field(description="events not stored by reason, last hour")
    devices_online: int
    devices_offline: int
    devices_unreachable: int = Field(0, description="devices offline past the alarm bound")
    outbox_alarm: bool = Field(
        description="a device is offline, its outbox keeps growing, or queues over the threshold"
    )
    open_keycards: int
    oldest_keycard_age_s: float | None


class Overview(BaseModel):
    tenant: str
    now_ms: int
    minute_ms: list[int] = Field(description="start of each per-minute column")
    sites: list[SiteFigures]
    templates_stored: int = Field(description="face templates on the firm's devices (status)")


def device_health(
    rows: Iterable[DeviceRow], now_ms: int, offline_after_s: float,
    unreachable_after_s: float = UNREACHABLE_AFTER_S,
) -> list[DeviceHealth]:  # fmt: skip
    out = []
    for r in rows:
        s, online = r.status, r.online(now_ms, offline_after_s)
        out.append(
            DeviceHealth(
                site=s.site,
                gate=s.gate,
                device=s.device,
                outbox_growing=r.outbox_growing(),
                online=online,
                last_seen_ms=r.last_seen_ms,
                offline_since_ms=None if online else r.last_seen_ms,
                unreachable=r.unreachable(now_ms, unreachable_after_s),
                outbox_depth=s.outbox_depth,
                oldest_queued_age_s=s.oldest_queued_age_s,
                gallery_templates=s.gallery_templates,
                models=list(s.models),
                frames_per_s=s.frames_per_s,
                decision_latency_ms=s.decision_latency_ms,
                software_version=s.software_version,
            )
        )
    return out


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def build_overview(
    tenant: str,
    now_ms: int,
    sites: Mapping[str, list[str]],
    counts: Mapping[AggregateKey, int],
    devices: list[DeviceHealth],
    keycards: Mapping[str, tuple[int, float]],
    outbox_alarm_depth: int = 1000,
) -> Overview:
    """``sites``: site → gates known from the registry; ``counts``: the last hour's
    aggregates; ``keycards``: site → (open, oldest age s)."""
    last = now_ms - now_ms % MINUTE_MS - MINUTE_MS  # the last full minute
    first = last - 59 * MINUTE_MS
    columns = list(range(first, last + MINUTE_MS, MINUTE_MS))
    gates: dict[str, set[str]] = {s: set(g) for s, g in sites.items()}
    per_minute: dict[str, list[int]] = defaultdict(lambda: [0] * 60)
    last_minute: dict[str, dict[str, int]] = defaultdict(dict)
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    discards: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for k, n in counts.items():
        if k.tenant != tenant or not first <= k.minute_ms <= last:
            continue
        gates.setdefault(k.site, set()).add(k.gate)
        per_minute[k.site][(k.minute_ms - first) // MINUTE_MS] += n
        t = totals[k.site]
        t["all"] += n
        t["face"] += n if k.kind in FACE_KINDS else 0
        t["denied"] += n if k.decision == "denied" else 0
        if k.minute_ms == last:
            last_minute[k.site][k.kind] = last_minute[k.site].get(k.kind, 0) + n
        if k.outcome != "stored":
            discards[k.site][k.outcome] += n
    for d in devices:
        gates.setdefault(d.site, set()).add(d.gate)
    figures = []
    for site in sorted(gates):
        devs = [d for d in devices if d.site == site]
        t = totals.get(site, {})
        open_n, oldest = keycards.get(site, (0, 0.0))
        figures.append(
            SiteFigures(
                site=site,
                gates=sorted(gates[site]),
                events_last_minute=dict(sorted(last_minute.get(site, {}).items())),
                events_last_hour=t.get("all", 0),
                per_minute=per_minute[site],
                face_share=_rate(t.get("face", 0), t.get("all", 0)),
                denial_rate=_rate(t.get("denied", 0), t.get("all", 0)),
                discards=dict(sorted(discards.get(site, {}).items())),
                devices_online=sum(d.online for d in devs),
                devices_offline=sum(not d.online for d in devs),
                devices_unreachable=sum(d.unreachable for d in devs),
                outbox_alarm=any(
                    not d.online or d.outbox_growing or d.outbox_depth > outbox_alarm_depth
                    for d in devs
                ),
                open_keycards=open_n,
                oldest_keycard_age_s=round(oldest, 1) if open_n else None,
            )
        )
    return Overview(
        tenant=tenant,
        now_ms=now_ms,
        minute_ms=columns,
        sites=figures,
        templates_stored=sum(d.gallery_templates for d in devices),
    )


class SeriesPoint(BaseModel):
    t_ms: int
    n: int


class Series(BaseModel):
    key: dict[str, str] = Field(description="the group: values of the requested by-fields")
    points: list[SeriesPoint]


def rollup(
    counts: Mapping[AggregateKey, int], step: str, by: tuple[str, ...], where: Mapping[str, str]
) -> list[Series]:
    """Per-minute counts summed into ``step`` buckets, grouped by the ``by`` fields."""
    size = STEP_MS[step]
    groups: dict[tuple[str, ...], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for k, n in counts.items():
        if any(getattr(k, f) != v for f, v in where.items()):
            continue
        groups[tuple(getattr(k, f) for f in by)][k.minute_ms - k.minute_ms % size] += n
    return [
        Series(
            key=dict(zip(by, g, strict=True)),
            points=[SeriesPoint(t_ms=t, n=n) for t, n in sorted(pts.items())],
        )
        for g, pts in sorted(groups.items())
    ]
