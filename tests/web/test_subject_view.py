"""The subject view: privacy officer only, every look audited with the officer's token
label, a listed reason and a case reference; the pseudonym is committed to in the
published log, never written; it appears on no other page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.web.conftest import A_SITE, B_SITE, ConsoleRig, auth, write_events

SUBJECT = "ps1_" + "5a" * 16
OTHER = "ps1_" + "6b" * 16


def test_subject_view_is_audited_and_for_officers_only(console: ConsoleRig, tmp_path: Path) -> None:
    from stream_processor.audit.log import FileAuditLog

    log_path = tmp_path / "audit" / "log.jsonl"
    log_path.parent.mkdir()
    console.deps.audit = FileAuditLog(log_path, fsync=False)
    now = int(console.clock.now * 1000)
    write_events(
        tmp_path / "events.sqlite",
        [("acme", A_SITE, "main", "face_match", "granted", now - 5000 + i) for i in range(3)],
        subject=SUBJECT,
    )
    write_events(
        tmp_path / "events.sqlite",
        [("acme", A_SITE, "east", "key_card", "granted", now - 100)],
        subject=OTHER,
    )
    body = {"site": A_SITE, "subject": SUBJECT, "reason": "access_request", "case_ref": "T-42"}

    def entries() -> list[dict[str, Any]]:
        if not log_path.exists():
            return []
        return [json.loads(line) for line in log_path.read_text().splitlines()]

    async def go(client: Any) -> None:
        for role in ("viewer", "operator"):
            resp = await client.post(
                "/api/v1/subjects/lookup", json=body, headers=auth(console.token("acme", role))
            )
            assert resp.status == 403
            page = await client.get("/console/subject", headers=auth(console.token("acme", role)))
            assert page.status == 403
        officer = auth(console.token("acme", "privacy_officer"))
        for bad in (
            {**body, "reason": "Zhang San asked at the desk"},  # free text: refused
            {**body, "case_ref": "case of Zhang San"},
            {**body, "subject": "resident-7"},
        ):
            assert (
                await client.post("/api/v1/subjects/lookup", json=bad, headers=officer)
            ).status == 422
        resp = await client.post(
            "/api/v1/subjects/lookup", json={**body, "site": B_SITE}, headers=officer
        )
        assert resp.status == 404  # another firm's site
        assert entries() == []  # refused looks wrote nothing
        resp = await client.post("/api/v1/subjects/lookup", json=body, headers=officer)
        view = await resp.json()
        assert resp.status == 200, view
        assert [e["kind"] for e in view["events"]] == ["face_match"] * 3
        (entry,) = entries()
        assert entry["type"] == "subject_viewed" and entry["tenant"] == "acme"
        assert (
            entry["body"]["by"] == "acme-privacy_officer"
            and entry["body"]["reason"] == "access_request"
        )
        assert entry["body"]["case_ref"] == "T-42" and entry["subject"].startswith("c1_")
        assert view["audit_seq"] == entry["seq"]
        assert SUBJECT not in log_path.read_text()
        # The page: the same look, through a browser session's form.
        overview = await (await client.get("/console", headers=officer)).text()
        assert SUBJECT not in overview and OTHER not in overview

    console.run(go)
    assert len(entries()) == 1
