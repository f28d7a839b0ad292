"""Erasure requests and receipts (privacy officer) and camera notices (operator) over the
API: the token's tenant only, SLA figures right, no pseudonym."""

from __future__ import annotations

from typing import Any

from tests.web.conftest import A_SITE, B_SITE, ConsoleRig, auth

SUBJECT = "ps1_" + "77" * 16
DAY = 86_400_000


def test_erasures_with_sla_and_receipts(console: ConsoleRig) -> None:
    from stream_processor.erasure.book import ErasureBook

    ErasureBook(console.db)  # its schema
    now = int(console.clock.now * 1000)
    rows = [  # request, tenant, site, status, requested, completed
        ("er-1", "acme", A_SITE, "complete", now - 10 * DAY, now - 9 * DAY),
        ("er-2", "acme", A_SITE, "complete", now - 5 * DAY, now - 5 * DAY + 3_600_000),
        ("er-3", "acme", A_SITE, "pending", now - 40 * DAY, None),  # overdue (SLA 30 d)
        ("er-4", "acme", A_SITE, "pending", now - 1 * DAY, None),
        ("er-5", "bolt", B_SITE, "pending", now - 50 * DAY, None),
    ]
    for rid, tenant, site, status, requested, completed in rows:
        console.db.execute(
            "INSERT INTO erasure_progress (request_id, command_id, tenant, site, status, "
            "requested_at_ms, updated_at_ms, completed_at_ms, progress) VALUES (?,?,?,?,?,?,?,?,?)",
            (rid, f"cmd-{rid}", tenant, site, status, requested, requested, completed, b"{}"),
        )
    console.db.execute("INSERT INTO erasure_receipts VALUES ('er-1', ?, ?, '{}')", (SUBJECT, now))

    async def go(client: Any) -> None:
        assert (
            await client.get("/api/v1/erasures", headers=auth(console.token("acme", "operator")))
        ).status == 403
        resp = await client.get(
            "/api/v1/erasures", headers=auth(console.token("acme", "privacy_officer"))
        )
        body = await resp.json()
        assert resp.status == 200, body
        assert (body["pending"], body["overdue"], body["completed"]) == (2, 1, 2)
        assert body["median_completion_s"] == (86_400 + 3_600) / 2
        by_id = {r["request_id"]: r for r in body["requests"]}
        assert set(by_id) == {"er-1", "er-2", "er-3", "er-4"}
        assert by_id["er-1"]["receipt_issued"] is True and by_id["er-3"]["overdue"] is True
        assert SUBJECT not in await resp.text()
        page = await (
            await client.get(
                "/api/v1/erasures?limit=1&offset=1",
                headers=auth(console.token("acme", "privacy_officer")),
            )
        ).json()
        assert len(page["requests"]) == 1 and page["next_offset"] == 2
        html = await (
            await client.get("/console?lang=en", headers=auth(console.token("acme", "viewer")))
        ).text()
        assert 'id="erasure-pending">2<' in html and SUBJECT not in html

    console.run(go)


def test_notices_list_with_versions(console: ConsoleRig) -> None:
    async def go(client: Any) -> None:
        op = auth(console.token("acme", "operator"))
        assert (
            await client.get("/api/v1/notices", headers=auth(console.token("acme", "viewer")))
        ).status == 403
        body = await (await client.get("/api/v1/notices", headers=op)).json()
        assert [n["camera"] for n in body["notices"]] == [
            "gate-main-1",
            "gate-east-1",
            "garage-card-1",
        ]
        assert all(n["version"] is None and n["site"] == A_SITE for n in body["notices"])
        assert (await client.get(f"/notice/acme/{A_SITE}/gate-east-1")).status == 200
        body = await (await client.get("/api/v1/notices", headers=op)).json()
        versions = {n["camera"]: n["version"] for n in body["notices"]}
        assert versions == {"gate-main-1": None, "gate-east-1": 1, "garage-card-1": None}
        other = await (
            await client.get("/api/v1/notices", headers=auth(console.token("bolt", "operator")))
        ).json()
        assert {n["site"] for n in other["notices"]} == {B_SITE}

    console.run(go)


def test_dead_letters_by_reason_of_the_tenants_devices(console: ConsoleRig) -> None:
    from stream_processor.dead_letter import DeadLetter

    now = int(console.clock.now * 1000)
    letters = console.deps.dead_letters
    acme = f"facegate/v1/acme/{A_SITE}/main/cam-1/events"
    for topic, reason, at in [
        (acme, "unknown_field", now),
        (acme, "unknown_field", now - 3_600_000),
        (acme, "clock_skew", now),
        (acme, "bad_json", now - 30 * 3_600_000),  # outside 24 h
        (f"facegate/v1/bolt/{B_SITE}/main/cam-1/events", "identity_mismatch", now),
        ("t.raw", "invalid_field", now),
        ("garbage/topic", "bad_topic", now),
    ]:
        letters.take(
            DeadLetter.build(
                b'{"image": "x"}', reason, "d", topic, at, "bridge", key=b"k" * 32
            ).encode()
        )
    letters.take(b"not a letter")
    assert letters.unreadable == 1

    async def go(client: Any) -> None:
        resp = await client.get(
            "/api/v1/dead-letters?hours=24", headers=auth(console.token("acme", "viewer"))
        )
        body = await resp.json()
        assert body["total"] == 3 and sum(body["per_hour"]) == 3 and len(body["per_hour"]) == 24
        assert body["by_reason"] == [
            {"reason": "clock_skew", "letters": 1},
            {"reason": "unknown_field", "letters": 2},
        ]
        other = await (
            await client.get("/api/v1/dead-letters", headers=auth(console.token("bolt", "viewer")))
        ).json()
        assert other["by_reason"] == [{"reason": "identity_mismatch", "letters": 1}]
        page = await (
            await client.get("/console?lang=en", headers=auth(console.token("acme", "viewer")))
        ).text()
        assert 'id="dead-letters">3<' in page and "identity_mismatch" not in page

    console.run(go)
