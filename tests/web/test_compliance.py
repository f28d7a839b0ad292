"""The compliance panel: filing threshold from device status (date kept), impact
assessments per site with a warning, notice coverage, consent counts — no pseudonym."""

from __future__ import annotations

from typing import Any

from edge_agent.wire.status import DeviceStatus
from stream_processor.policy.consent import ConsentRecord, ConsentStatus, GivenBy
from tests.web.conftest import A_SITE, ConsoleRig, auth

SUBJECTS = ["ps1_" + f"{i:032x}" for i in range(4)]


def status(site: str, gate: str, device: str, residents: int | None, templates: int) -> Any:
    return DeviceStatus(
        schema_version=1,
        tenant="acme",
        site=site,
        gate=gate,
        device=device,
        sent_at_ms=1_790_000_000_000,
        uptime_s=1,
        outbox_depth=0,
        oldest_queued_age_s=0.0,
        gallery_templates=templates,
        gallery_residents=residents,
        models=["m"],
        frames_per_s=1.0,
        decision_latency_ms=1.0,
        software_version="0.1.0",
    )


def consent(
    subject: str,
    status_: ConsentStatus,
    minor: bool = False,
    at: int = 0,
    purpose: str = "access_control",
) -> tuple[bytes, bytes]:
    r = ConsentRecord(
        tenant="acme",
        site=A_SITE,
        subject=subject,
        purpose=purpose,
        status=status_,
        given_by=GivenBy.GUARDIAN if minor else GivenBy.SELF,
        minor=minor,
        evidence_ref="form-1" if status_ is ConsentStatus.GRANTED else None,
        at_ms=1_790_000_000_000 + at,
    )
    return r.key, r.encode()


def test_compliance_panel(console: ConsoleRig, tmp_path: Any) -> None:
    deps, now = console.deps, int(console.clock.now * 1000)
    (tmp_path / "config" / "compliance.yaml").write_text(
        f"version: 1\npia:\n  acme:\n    {A_SITE}: {{reference: PIA-2026-07, date: 2026-05-01}}\n"
    )
    deps.devices.apply(status(A_SITE, "main", "cam-1", 60_000, 120_000), now)
    deps.devices.apply(status(A_SITE, "east", "cam-1", 59_000, 118_000), now)
    deps.devices.apply(status("west-court", "gate-1", "cam-9", None, 45_000), now)
    for key, value in (
        consent(SUBJECTS[0], ConsentStatus.GRANTED),
        consent(SUBJECTS[1], ConsentStatus.GRANTED, minor=True),
        consent(SUBJECTS[2], ConsentStatus.GRANTED),
        consent(SUBJECTS[2], ConsentStatus.WITHDRAWN, at=5),  # replaces the grant (same key)
        consent(SUBJECTS[3], ConsentStatus.GRANTED, at=1),
        consent(SUBJECTS[3], ConsentStatus.WITHDRAWN, at=9, purpose="*"),  # ends every grant
    ):
        assert deps.consent.take(key, value) is None
    assert deps.consent.take(b"acme/x/y/z", b"not json") is not None  # refused, counted there

    async def go(client: Any) -> None:
        viewer = auth(console.token("acme", "viewer"))
        c = await (await client.get("/api/v1/compliance", headers=viewer)).json()
        assert c["persons_with_templates"] == 60_000 + 45_000  # site max, then sum over sites
        assert c["templates_stored"] == 120_000 + 118_000 + 45_000
        assert c["threshold_reached_at_ms"] == now
        sites = {s["site"]: s for s in c["sites"]}
        assert sites[A_SITE]["pia"] == {"reference": "PIA-2026-07", "date": "2026-05-01"}
        assert sites[A_SITE]["pia_missing"] is False
        assert sites["west-court"]["pia_missing"] is True  # face templates, no assessment
        n = c["notices"]
        assert (n["cameras"], n["cameras_with_notice"]) == (3, 0)
        assert n["devices_unmapped"] == ["west-court/gate-1/cam-9"]
        assert c["consent"] == [
            {
                "site": A_SITE,
                "residents_consenting": 2,
                "residents_withdrawn": 2,
                "minors_guardian_consent": 1,
            }
        ]
        # A published notice page counts; a figure that drops keeps the date it was reached.
        assert (await client.get(f"/notice/acme/{A_SITE}/gate-main-1")).status == 200
        console.clock.now += 86_400
        deps.devices.apply(status("west-court", "gate-1", "cam-9", None, 10), now + 1)
        c = await (await client.get("/api/v1/compliance", headers=viewer)).json()
        assert c["notices"]["cameras_with_notice"] == 1
        assert c["persons_with_templates"] < 100_000 and c["threshold_reached_at_ms"] == now
        page = await (await client.get("/console/compliance?lang=en", headers=viewer)).text()
        assert "pia-missing" in page and "PIA-2026-07" in page and "30 working days" in page
        for text in (page, str(c)):
            assert not any(s in text for s in SUBJECTS)
        other = await (
            await client.get("/api/v1/compliance", headers=auth(console.token("bolt", "viewer")))
        ).json()
        assert other["persons_with_templates"] == 0 and other["threshold_reached_at_ms"] is None

    console.run(go)
