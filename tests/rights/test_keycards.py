"""Key cards on request: open requests are counted and aged until fulfilled."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from edge_agent.pseudonym import SiteSecret
from stream_processor.rights.keycards import (
    KeycardBook,
    KeycardError,
    KeycardStatus,
    register_keycard_metrics,
)
from tests.conftest import FACEGATE
from tests.support.audit import AuditRig, Clock, pseudonym_of
from tests.support.web import WebRig, serve


@pytest.fixture
def book(rights_db: Any, clock: Clock, audit_rig: AuditRig) -> KeycardBook:
    """On both backends (SQLite and the shared PostgreSQL)."""
    return KeycardBook(rights_db, audit=audit_rig.log, clock=clock)


def sample(registry: CollectorRegistry, name: str, site: str = "north") -> float | None:
    return registry.get_sample_value(name, {"tenant": "acme", "site": site})


@pytest.mark.unit
def test_requests_are_counted_and_aged_until_fulfilled(book: KeycardBook, clock: Clock) -> None:
    registry = CollectorRegistry()
    register_keycard_metrics(book, registry)
    first = book.request("acme", "north", channel="cli", unit="3-1201", contact="138 0000 0000")
    clock.advance(3600)
    book.request("acme", "north", channel="web", unit="5-0302", contact="a@example.com")
    book.request("acme", "south", channel="office", subject=pseudonym_of("r-9"))
    clock.advance(1800)

    assert sample(registry, "facegate_keycard_requests_total") == 2
    assert sample(registry, "facegate_keycard_requests_open") == 2
    assert sample(registry, "facegate_keycard_request_oldest_open_age_seconds") == 5400
    assert sample(registry, "facegate_keycard_requests_open", "south") == 1

    clock.advance(600)
    done = book.fulfil(first.id, card_ref="C-0042")
    assert done.status is KeycardStatus.FULFILLED
    assert done.age_s(0) == 6000
    assert sample(registry, "facegate_keycard_requests_open") == 1
    assert sample(registry, "facegate_keycard_requests_fulfilled_total") == 1
    assert sample(registry, "facegate_keycard_request_oldest_open_age_seconds") == 2400
    assert sample(registry, "facegate_keycard_requests_total") == 2  # counters never go down

    open_ = book.find(KeycardStatus.OPEN)
    assert [(r.site, r.age_s(int(clock.now * 1000))) for r in open_] == [
        ("north", 2400.0),
        ("south", 2400.0),
    ]


@pytest.mark.unit
def test_no_pseudonym_in_metric_labels(book: KeycardBook) -> None:
    registry = CollectorRegistry()
    register_keycard_metrics(book, registry)
    subject = pseudonym_of("resident-1")
    book.request("acme", "north", channel="cli", subject=subject)
    for metric in registry.collect():
        for s in metric.samples:
            assert set(s.labels) <= {"tenant", "site"}
            assert subject not in str(s.labels.values())


@pytest.mark.unit
def test_state_rules(book: KeycardBook) -> None:
    req = book.request("acme", "north", channel="cli", unit="1-101")
    book.fulfil(req.id)
    with pytest.raises(KeycardError, match="fulfilled, not open"):
        book.fulfil(req.id)
    with pytest.raises(KeycardError, match="a unit, a contact or a subject"):
        book.request("acme", "north", channel="cli")
    with pytest.raises(KeycardError, match="pseudonym"):
        book.request("acme", "north", channel="cli", subject="resident-1")
    with pytest.raises(KeycardError):
        book.request("ACME", "north", channel="cli", unit="1")


@pytest.mark.unit
def test_requests_and_fulfilment_are_audited_without_identifiers(
    book: KeycardBook, audit_rig: AuditRig
) -> None:
    subject = pseudonym_of("resident-2")
    req = book.request("acme", "north", channel="office", subject=subject, unit="2-202")
    with pytest.raises(KeycardError, match="at the office"):
        book.fulfil(req.id)  # without the office's hook: the card would reach no gate
    office = KeycardBook(book.db, audit=audit_rig.log, on_fulfilled=lambda r: None)
    office.fulfil(req.id, "c1_" + "0" * 40)
    types = [e.type.value for e in audit_rig.log.entries()]
    assert types == ["keycard_requested", "keycard_fulfilled"]
    text = audit_rig.paths.log.read_text()
    assert subject not in text and "2-202" not in text
    assert [o.seq for o in audit_rig.openings.for_subject(subject)] == [0, 1]


def api(rig: WebRig, method: str, path: str, token: str | None = "operator", **kw: Any):  # type: ignore[no-untyped-def]
    if token == "operator":  # an operator token of acme, the example registry's firm
        from stream_processor.web.tokens import Role

        token = rig.deps.tokens.create("acme", Role.OPERATOR, "test")[0]  # type: ignore[attr-defined]

    async def go() -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with serve(rig) as client:
            resp = await client.request(method, path, headers=headers, **kw)
            ctype = resp.headers.get("Content-Type", "")
            body = await (resp.json() if "json" in ctype else resp.text())
            return resp.status, body

    return asyncio.run(go())


def test_resident_form_and_operator_api(web_rig: WebRig) -> None:
    status, html = api(
        web_rig,
        "POST",
        "/notice/acme/north-garden/keycard",
        token=None,
        data={"unit": "3-1201", "contact": "138 0000 0000", "lang": "en", "camera": "gate-main-1"},
    )
    assert status == 201
    assert "Request received" in html

    assert api(web_rig, "GET", "/api/v1/keycards", token=None)[0] == 401
    assert api(web_rig, "GET", "/api/v1/keycards", token="wrong")[0] == 401

    status, created = api(
        web_rig,
        "POST",
        "/api/v1/keycards",
        json={"site": "north-garden", "subject": pseudonym_of("r-1")},
    )
    assert status == 201
    assert created["enrolled_subject"] is True
    assert "subject" not in created  # the API never hands out pseudonyms

    web_rig.audit.clock.advance(7200)
    status, listing = api(web_rig, "GET", "/api/v1/keycards?status=open")
    assert status == 200
    assert [r["age_s"] for r in listing["requests"]] == [7200.0, 7200.0]
    assert listing["open"] == [{"site": "north-garden", "open": 2, "oldest_age_s": 7200.0}]

    # An enrolled resident's card goes onto the gates under the site secret: the office
    # fulfils it (tests/keycards/), the console refuses and changes nothing.
    status, refused = api(
        web_rig, "POST", f"/api/v1/keycards/{created['id']}/fulfil", json={"card_ref": "C-1"}
    )
    assert status == 409 and "at the office" in refused["detail"]
    (form,) = [r for r in listing["requests"] if not r["enrolled_subject"]]
    status, done = api(
        web_rig, "POST", f"/api/v1/keycards/{form['id']}/fulfil", json={"card_ref": "C-1"}
    )
    assert status == 200 and done["status"] == "fulfilled"
    assert api(web_rig, "POST", f"/api/v1/keycards/{form['id']}/fulfil")[0] == 409

    status, text = api(web_rig, "GET", "/metrics", token=None)
    labels = 'site="north-garden",tenant="acme"'
    assert f"facegate_keycard_requests_open{{{labels}}} 1.0" in text
    assert f"facegate_keycard_requests_total{{{labels}}} 2.0" in text


def test_form_refuses_an_empty_request(web_rig: WebRig) -> None:
    status, html = api(
        web_rig, "POST", "/notice/acme/north-garden/keycard", token=None, data={"lang": "zh"}
    )
    assert status == 400
    assert "申请未能提交" in html


@pytest.mark.e2e
def test_cli_request_list_fulfil(tmp_path: Path) -> None:
    env = {**os.environ, "FACEGATE_STATE_DIR": str(tmp_path / "state")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [FACEGATE, "keycard", *args], env=env, capture_output=True, text=True, timeout=120
        )

    secret = tmp_path / "site.secret"
    secret.write_text(SiteSecret("acme", "north", b"x" * 32).text())
    made = run(
        "request",
        "--tenant",
        "acme",
        "--site",
        "north",
        "--resident-id",
        "resident-00007",
        "--site-secret",
        str(secret),
        "--unit",
        "7-0707",
    )
    assert made.returncode == 0, made.stderr
    request_id = made.stdout.split()[2]
    listed = run("list", "--open")
    assert request_id in listed.stdout and "open at acme/north: 1" in listed.stdout
    assert "resident-00007" not in listed.stdout
    # The request names an enrolled resident: handing over the card registers it on the
    # gates, which needs the card's number and the site secret (tests/keycards/).
    refused = run("fulfil", request_id, "--card", "C-7")
    assert refused.returncode == 2 and "--site-secret" in refused.stderr
    cancelled = run("cancel", request_id, "--note", "asked again", "--reason", "duplicate")
    assert cancelled.returncode == 0
    assert "open at" not in run("list", "--open").stdout


def test_public_form_is_rate_limited(web_rig: WebRig) -> None:
    async def go() -> list[int]:
        async with serve(web_rig) as client:
            out = []
            for i in range(7):
                resp = await client.post(
                    "/notice/acme/north-garden/keycard",
                    data={"unit": f"1-{i}", "contact": "x@example.com", "lang": "en"},
                )
                out.append(resp.status)
            return out

    assert asyncio.run(go()) == [201] * 5 + [429, 429]
    assert len(web_rig.deps.keycards.find(KeycardStatus.OPEN)) == 5  # type: ignore[attr-defined]


@pytest.mark.unit
def test_contact_details_are_scrubbed_after_closing(book: KeycardBook, clock: Clock) -> None:
    req = book.request("acme", "north", channel="cli", unit="1-101", contact="x@example.com")
    keep = book.request("acme", "north", channel="cli", unit="2-202")
    book.fulfil(req.id)
    clock.advance(31 * 86400)
    assert book.scrub_closed(30 * 86400) == 1
    scrubbed = book.get(req.id)
    assert (scrubbed.unit, scrubbed.contact) == (None, None)
    assert scrubbed.status is KeycardStatus.FULFILLED
    assert book.get(keep.id).unit == "2-202"  # still open: still needed


def test_web_housekeeping_forgets_old_contact_details(web_rig: WebRig) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from stream_processor.web.app import add_housekeeping, create_app

    book = web_rig.deps.keycards  # type: ignore[attr-defined]
    req = book.request("acme", "north-garden", channel="cli", unit="1-1", contact="x@example.com")
    book.fulfil(req.id)
    web_rig.audit.clock.advance(31 * 86400)

    async def go() -> None:
        app = create_app(web_rig.deps)  # type: ignore[arg-type]
        add_housekeeping(app, 30 * 86400, every_s=0.05)
        async with TestClient(TestServer(app)) as client:
            assert (await client.get("/healthz")).status == 200
            await asyncio.sleep(0.2)

    asyncio.run(go())
    assert book.get(req.id).contact is None
