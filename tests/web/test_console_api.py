"""The console API: tokens and roles, tenant isolation, figures from the store, policies."""

from __future__ import annotations

import time
from typing import Any

from tests.support.web import POLICY
from tests.web.conftest import A_SITE, B_SITE, ConsoleRig, auth, write_events

GATE = "main"


def _device(tenant: str, site: str, gate: str, sent_ms: int, outbox: int = 0) -> Any:
    from edge_agent.wire.status import DeviceStatus

    return DeviceStatus(
        schema_version=1,
        tenant=tenant,
        site=site,
        gate=gate,
        device="dev-1",
        sent_at_ms=sent_ms,
        uptime_s=60,
        outbox_depth=outbox,
        oldest_queued_age_s=0.0,
        gallery_templates=120,
        models=["blazeface-1", "mobilefacenet-1"],
        frames_per_s=12.5,
        decision_latency_ms=21.0,
        software_version="0.1.0",
    )


def seed(rig: ConsoleRig, tmp_path: Any) -> None:
    now = int(rig.clock.now * 1000)
    last = now - now % 60_000 - 60_000
    rows = [("acme", A_SITE, GATE, "face_match", "granted", last + 1000 + i) for i in range(3)]
    rows += [("acme", A_SITE, "east", "key_card", "denied", last + 2000)]
    rows += [("bolt", B_SITE, GATE, "face_match", "granted", last + 3000 + i) for i in range(7)]
    write_events(tmp_path / "events.sqlite", rows)
    rig.deps.devices.apply(_device("acme", A_SITE, GATE, now), now)
    rig.deps.devices.apply(_device("bolt", B_SITE, GATE, now, outbox=5000), now)


def test_overview_counts_only_the_tokens_tenant(console: ConsoleRig, tmp_path: Any) -> None:
    seed(console, tmp_path)

    async def go(client: Any) -> None:
        resp = await client.get("/api/v1/overview", headers=auth(console.token("acme", "viewer")))
        assert resp.status == 200
        assert resp.headers["Cache-Control"] == "no-store"
        ov = await resp.json()
        assert ov["tenant"] == "acme"
        assert [s["site"] for s in ov["sites"]] == [A_SITE]
        site = ov["sites"][0]
        assert site["events_last_minute"] == {"face_match": 3, "key_card": 1}
        assert site["events_last_hour"] == 4
        assert site["face_share"] == 0.75 and site["denial_rate"] == 0.25
        assert site["devices_online"] == 1 and site["outbox_alarm"] is False
        assert ov["templates_stored"] == 120
        body = await (
            await client.get("/api/v1/overview", headers=auth(console.token("bolt", "viewer")))
        ).json()
        assert [s["site"] for s in body["sites"]] == [B_SITE]
        assert body["sites"][0]["events_last_hour"] == 7
        assert body["sites"][0]["outbox_alarm"] is True  # 5000 queued

    console.run(go)


def test_device_goes_offline_after_silence(console: ConsoleRig, tmp_path: Any) -> None:
    seed(console, tmp_path)
    seen = int(console.clock.now * 1000)
    console.clock.now += 31

    async def go(client: Any) -> None:
        resp = await client.get("/api/v1/devices", headers=auth(console.token("acme", "viewer")))
        (dev,) = (await resp.json())["devices"]
        assert dev["online"] is False
        assert dev["last_seen_ms"] == seen and dev["offline_since_ms"] == seen

    console.run(go)


def test_another_tenants_ids_answer_404(console: ConsoleRig, tmp_path: Any) -> None:
    import yaml

    seed(console, tmp_path)
    bolt_card = console.deps.keycards.request("bolt", B_SITE, channel="office", unit="1-101")

    async def go(client: Any) -> None:
        a_op = auth(console.token("acme", "privacy_officer"))
        for path in (
            f"/api/v1/sites/{B_SITE}",
            f"/api/v1/sites/{B_SITE}/gates/{GATE}",
            f"/console/sites/{B_SITE}",
            f"/console/sites/{B_SITE}/gates/{GATE}",
        ):
            resp = await client.get(path, headers=a_op)
            assert resp.status == 404, path
            assert B_SITE not in (await resp.text()).replace(f"no site {B_SITE}", ""), path
        for action, body in (("fulfil", {}), ("cancel", {"note": "x"})):
            resp = await client.post(
                f"/api/v1/keycards/{bolt_card.id}/{action}", json=body, headers=a_op
            )
            assert resp.status == 404
            assert await resp.json() == {
                "error": "not_found",
                "detail": f"no key-card request {bolt_card.id}",
            }
        listing = await (await client.get("/api/v1/keycards", headers=a_op)).json()
        assert listing["requests"] == [] and listing["open"] == []
        resp = await client.post(
            "/api/v1/keycards", json={"site": B_SITE, "unit": "2"}, headers=a_op
        )
        assert resp.status == 404
        bolt_policy = yaml.safe_load(POLICY.format(tenant="bolt", face="1d"))
        resp = await client.post(
            "/api/v1/policy/dry-run", headers=a_op, json={"document": bolt_policy}
        )
        assert resp.status == 404
        for path in ("/api/v1/overview", "/api/v1/devices", "/api/v1/retention", "/console"):
            text = await (await client.get(path, headers=a_op)).text()
            assert B_SITE not in text and "bolt" not in text, path
        assert console.deps.keycards.get(bolt_card.id).status.value == "open"

    console.run(go)


def test_roles_and_bad_credentials(console: ConsoleRig) -> None:
    import yaml

    from stream_processor.web.tokens import Role

    doc = yaml.safe_load(POLICY.format(tenant="acme", face="30d"))
    book = console.deps.tokens

    async def go(client: Any) -> None:
        viewer = auth(console.token("acme", "viewer"))
        resp = await client.post("/api/v1/policy/apply", json={"document": doc}, headers=viewer)
        assert resp.status == 403 and (await resp.json())["error"] == "forbidden"
        assert (await client.get("/api/v1/keycards", headers=viewer)).status == 403
        op = auth(console.token("acme", "operator"))
        assert (
            await client.post("/api/v1/policy/apply", json={"document": doc}, headers=op)
        ).status == 201
        assert console.deps.policies.history("acme")[-1].applied_by == "web:acme-operator"

        for headers in (
            {},
            auth("fgt_" + "A" * 43),
            {"Authorization": "Basic eDp5"},
            {"Cookie": "fg_session=forged"},
        ):
            resp = await client.get("/api/v1/overview", headers=headers)
            assert resp.status == 401 and (await resp.json())["error"] == "unauthorized"
        secret, _ = book.create("acme", Role.VIEWER, "temp", ttl_s=60)
        assert (await client.get("/api/v1/me", headers=auth(secret))).status == 200
        console.clock.now += 61
        assert (await client.get("/api/v1/me", headers=auth(secret))).status == 401  # expired
        book.revoke(console.deps.tokens.authenticate(console.token("acme", "operator")).id)
        assert (await client.get("/api/v1/me", headers=op)).status == 401  # revoked

    console.run(go)


def test_tokens_are_stored_only_as_hashes(console: ConsoleRig) -> None:
    rows = console.db.execute("SELECT * FROM web_tokens").fetchall()
    dump = repr(rows)
    for secret in console.tokens.values():
        assert secret not in dump and secret[4:] not in dump
        assert len(secret) >= 4 + 43  # 256 bits, url-safe base64


def test_policy_dry_run_apply_history(console: ConsoleRig, tmp_path: Any) -> None:
    import yaml

    now = int(console.clock.now * 1000)
    day = 86_400_000
    rows = [("acme", A_SITE, GATE, "face_match", "granted", now - 10 * day + i) for i in range(5)]
    rows += [("acme", A_SITE, GATE, "face_match", "granted", now - 1 * day + i) for i in range(2)]
    write_events(tmp_path / "events.sqlite", rows)
    op = auth(console.token("acme", "operator"))

    async def go(client: Any) -> None:
        v1 = yaml.safe_load(POLICY.format(tenant="acme", face="30d"))
        assert (
            await client.post("/api/v1/policy/apply", json={"document": v1}, headers=op)
        ).status == 201
        v2 = yaml.safe_load(POLICY.format(tenant="acme", face="7d"))
        resp = await client.post("/api/v1/policy/dry-run", json={"document": v2}, headers=op)
        dry = await resp.json()
        assert dry == {
            "version": 2,
            "deletes": [{"site": A_SITE, "kind": "face_match", "events": 5}],
            "total": 5,
        }
        assert len(console.deps.policies.history("acme")) == 1  # the dry run changed nothing
        resp = await client.post(
            "/api/v1/policy/apply", json={"document": v2, "comment": "shorter"}, headers=op
        )
        assert resp.status == 201 and (await resp.json())["total"] == 5
        hist = await (await client.get("/api/v1/policy/history", headers=op)).json()
        assert [v["version"] for v in hist["versions"]] == [2, 1]
        assert "-  face_match:\n" not in hist["versions"][0]["diff"]
        assert "+    access_control: 7d" in hist["versions"][0]["diff"]
        shown = await (await client.get("/api/v1/policy", headers=op)).json()
        assert shown["version"] == 2 and shown["document"]["retention"]["face_match"] == {
            "access_control": "7d"
        }
        ret = await (await client.get("/api/v1/retention", headers=op)).json()
        (group,) = ret["groups"]
        assert ret["policy_version"] == 2 and group["rows"] == 7 and group["within_rule"] is False
        page = await (await client.get("/console/retention?lang=en", headers=op)).text()
        assert "Retention status" in page and '<tr class="alarm"><td>north-garden</td>' in page

    console.run(go)


def test_aggregates_roll_up_by_hour(console: ConsoleRig, tmp_path: Any) -> None:
    hour = 3_600_000
    base = (int(time.time() * 1000) // hour - 3) * hour
    rows = [("acme", A_SITE, GATE, "face_match", "granted", base + m * 60_000) for m in range(90)]
    write_events(tmp_path / "events.sqlite", rows)

    async def go(client: Any) -> None:
        resp = await client.get(
            "/api/v1/aggregates",
            headers=auth(console.token("acme", "viewer")),
            params={
                "since_ms": str(base),
                "until_ms": str(base + 3 * hour),
                "step": "hour",
                "by": "site,kind",
            },
        )
        body = await resp.json()
        assert resp.status == 200, body
        (series,) = body["series"]
        assert series["key"] == {"site": A_SITE, "kind": "face_match"}
        assert series["points"] == [{"t_ms": base, "n": 60}, {"t_ms": base + hour, "n": 30}]

    console.run(go)


def test_openapi_document_is_valid_and_complete(console: ConsoleRig) -> None:
    from openapi_spec_validator import validate

    async def go(client: Any) -> None:
        resp = await client.get("/api/v1/openapi.json")
        assert resp.status == 200
        doc = await resp.json()
        validate(doc)
        assert doc["openapi"] == "3.1.0"
        for path in (
            "/api/v1/overview",
            "/api/v1/sites/{site}/gates/{gate}",
            "/api/v1/aggregates",
            "/api/v1/devices",
            "/api/v1/retention",
            "/api/v1/keycards",
            "/api/v1/policy/history",
            "/api/v1/policy/dry-run",
            "/api/v1/policy/apply",
        ):
            assert path in doc["paths"], path

    console.run(go)


def test_overview_without_a_camera_registry(console: ConsoleRig, tmp_path: Any) -> None:
    from stream_processor.notices.config import RegistryFile

    seed(console, tmp_path)
    console.deps.cameras = RegistryFile(tmp_path / "missing.yaml")

    async def go(client: Any) -> None:
        viewer = auth(console.token("acme", "viewer"))
        ov = await (await client.get("/api/v1/overview", headers=viewer)).json()
        assert [s["site"] for s in ov["sites"]] == [A_SITE]  # seen in events and devices
        resp = await client.post("/api/v1/keycards", json={"site": A_SITE},
                                 headers=auth(console.token("acme", "operator")))  # fmt: skip
        assert resp.status == 404  # not a registered site: no request without a registry

    console.run(go)


def test_growing_outbox_raises_the_alarm(console: ConsoleRig, tmp_path: Any) -> None:
    now = int(console.clock.now * 1000)
    for i, depth in enumerate((10, 20, 30)):
        console.deps.devices.apply(_device("acme", A_SITE, GATE, now + i, outbox=depth), now)

    async def go(client: Any) -> None:
        viewer = auth(console.token("acme", "viewer"))
        site = (await (await client.get("/api/v1/overview", headers=viewer)).json())["sites"][0]
        assert site["outbox_alarm"] is False  # grew twice: not yet
        console.deps.devices.apply(_device("acme", A_SITE, GATE, now + 3, outbox=40), now)
        console.clock.now += 2  # past the overview's one-second reuse
        site = (await (await client.get("/api/v1/overview", headers=viewer)).json())["sites"][0]
        assert site["outbox_alarm"] is True and site["devices_offline"] == 0
        (dev,) = (await (await client.get("/api/v1/devices", headers=viewer)).json())["devices"]
        assert dev["outbox_growing"] is True and dev["online"] is True

    console.run(go)
