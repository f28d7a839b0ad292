"""Consent withdrawals some gate still owes, beside the erasures (privacy officer): the API
and the console box, of the token's tenant only, overdue past the bound, no pseudonym."""

from __future__ import annotations

from typing import Any

from edge_agent.wire.commands import AckStatus, CommandAck, CommandType
from stream_processor.erasure.withdrawals import WithdrawalBook, WithdrawalProgress
from stream_processor.policy.consent import ConsentRecord, ConsentStatus, GivenBy
from stream_processor.processor.ledger import withdrawal_command
from tests.web.conftest import A_SITE, B_SITE, ConsoleRig, auth

MINUTE = 60_000


def _withdrawal(tenant: str, site: str, subject: str, at_ms: int,
                devices: list[tuple[str, str]]) -> WithdrawalProgress:  # fmt: skip
    record = ConsentRecord(
        tenant=tenant, site=site, subject=subject, purpose="*",
        status=ConsentStatus.WITHDRAWN, given_by=GivenBy.SELF, at_ms=at_ms,
    )  # fmt: skip
    command = withdrawal_command(record, b"k" * 32)
    return WithdrawalProgress.start(command, f"k-{subject}", devices, at_ms)


def _acked(p: WithdrawalProgress, gate: str, device: str) -> WithdrawalProgress:
    c = p.command
    ack = CommandAck(
        schema_version=1, command_id=c.command_id, type=CommandType.WITHDRAW_CONSENT,
        tenant=c.tenant, site=c.site, gate=gate, device=device, subject=c.subject,
        status=AckStatus.DONE, templates_removed=1, outbox_events_purged=0, acked_at_ms=1,
    )  # fmt: skip
    return p.with_ack(ack)[0]


def test_pending_and_overdue_withdrawals_of_the_tenant_only(console: ConsoleRig) -> None:
    book = WithdrawalBook(console.db, b"k" * 32)
    now = int(console.clock.now * 1000)
    gates = [("gate-main", "cam-1"), ("gate-east", "cam-1")]
    subjects = {n: "ps1_" + f"{n:02d}" * 16 for n in range(1, 6)}
    late = _withdrawal("acme", A_SITE, subjects[1], now - 30 * MINUTE, gates)  # overdue
    fresh = _withdrawal("acme", A_SITE, subjects[2], now - 2 * MINUTE, gates)
    done = _withdrawal("acme", A_SITE, subjects[3], now - 60 * MINUTE, gates[:1])
    other = _withdrawal("bolt", B_SITE, subjects[4], now - 90 * MINUTE, gates)  # not acme's
    for p in (late, fresh, done, other):
        assert book.add(p, now)
    book.update(late.command.command_id, lambda p: _acked(p, "gate-main", "cam-1"), now)
    book.update(done.command.command_id, lambda p: _acked(p, "gate-main", "cam-1"), now)

    async def go(client: Any) -> None:
        assert (await client.get(
            "/api/v1/withdrawals", headers=auth(console.token("acme", "operator"))
        )).status == 403  # fmt: skip
        resp = await client.get(
            "/api/v1/withdrawals", headers=auth(console.token("acme", "privacy_officer"))
        )
        body = await resp.json()
        assert resp.status == 200, body
        assert (body["pending"], body["overdue"], body["alarm_after_s"]) == (2, 1, 600)
        rows = {r["command_id"]: r for r in body["withdrawals"]}
        assert set(rows) == {late.command.command_id, fresh.command.command_id}
        assert rows[late.command.command_id]["devices_pending"] == ["gate-east/cam-1"]
        assert rows[late.command.command_id]["overdue"] is True
        assert rows[fresh.command.command_id]["overdue"] is False
        text = await resp.text()
        assert not any(s in text for s in subjects.values())  # no pseudonym leaves
        assert other.command.command_id not in text  # another tenant's stays unseen
        bolt = await (await client.get(
            "/api/v1/withdrawals", headers=auth(console.token("bolt", "privacy_officer"))
        )).json()  # fmt: skip
        assert [r["command_id"] for r in bolt["withdrawals"]] == [other.command.command_id]
        page = await (await client.get(
            "/api/v1/withdrawals?limit=1",
            headers=auth(console.token("acme", "privacy_officer")),
        )).json()  # fmt: skip
        assert len(page["withdrawals"]) == 1 and page["next_offset"] == 1
        html = await (
            await client.get("/console?lang=en", headers=auth(console.token("acme", "viewer")))
        ).text()
        assert 'id="withdrawals-pending">2<' in html
        assert 'id="withdrawals-overdue"><span class="alarm">1<' in html
        assert not any(s in html for s in subjects.values())

    console.run(go)


def test_no_withdrawal_table_yet_is_none_pending(console: ConsoleRig) -> None:
    """Before the erasure worker first ran, its table does not exist: zero, not an error."""

    async def go(client: Any) -> None:
        body = await (await client.get(
            "/api/v1/withdrawals", headers=auth(console.token("acme", "privacy_officer"))
        )).json()  # fmt: skip
        assert (body["pending"], body["overdue"], body["withdrawals"]) == (0, 0, [])

    console.run(go)

