"""/receipt: a resident pastes a receipt and reads what it states and whether it verifies."""

from __future__ import annotations

import asyncio

from stream_processor.audit import record
from stream_processor.rights.receipts import ErasureReceipt, issue_receipt
from tests.support.audit import SUBJECT, make_claims, uuid7
from tests.support.web import WebRig, serve


def post(rig: WebRig, text: str, lang: str) -> tuple[int, str]:
    async def go() -> tuple[int, str]:
        async with serve(rig) as client:
            resp = await client.post(f"/receipt?lang={lang}", data={"receipt": text})
            return resp.status, await resp.text()

    return asyncio.run(go())


def issued(rig: WebRig) -> ErasureReceipt:
    audit = rig.audit
    request_id = uuid7()
    record.erasure_requested(
        audit.log,
        request_id=request_id,
        tenant="acme",
        site="north-garden",
        subject=SUBJECT,
        purposes=None,
        channel="office",
    )
    claims = make_claims(request_id).model_copy(update={"site": "north-garden"})
    receipt = issue_receipt(
        claims, sink=audit.log, key=audit.key, log_id="test-log", openings=audit.openings
    )
    audit.checkpointer.checkpoint()
    return receipt


def test_valid_receipt_in_chinese_and_english(web_rig: WebRig) -> None:
    receipt = issued(web_rig)
    status, html = post(web_rig, receipt.to_json(), "zh")
    assert status == 200
    assert "回执有效" in html
    assert "17 × stored events" in html
    assert "(Asia/Shanghai)" in html  # the site's time zone
    status, html = post(web_rig, receipt.to_json(), "en")
    assert status == 200 and "The receipt is valid" in html
    assert "main/cam-1: 1 face templates, 2 queued events" in html


def test_forged_and_unreadable_receipts(web_rig: WebRig) -> None:
    receipt = issued(web_rig)
    deletions = [d.model_copy(update={"count": 0}) for d in receipt.claims.deletions]
    forged = receipt.model_copy(
        update={"claims": receipt.claims.model_copy(update={"deletions": deletions})}
    )
    status, html = post(web_rig, forged.to_json(), "en")
    assert status == 422
    assert "does not verify" in html and "signature does not verify" in html
    assert "anchor_body" in html  # and the log disagrees with its claims
    status, html = post(web_rig, "{not json", "zh")
    assert status == 400 and "无法读取回执" in html


def test_form_is_served(web_rig: WebRig) -> None:
    async def go() -> tuple[int, str]:
        async with serve(web_rig) as client:
            resp = await client.get("/receipt", headers={"Accept-Language": "en"})
            return resp.status, await resp.text()

    status, html = asyncio.run(go())
    assert status == 200 and 'action="/receipt?lang=en"' in html
