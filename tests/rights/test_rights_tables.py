"""Every table of the rights database through its owner's own code, on SQLite and on
PostgreSQL: the SQL each call site writes runs on both (placeholders, upserts, JSON,
joins, 64-bit timestamps, the exclusive transaction)."""

from __future__ import annotations

import time
from typing import Any

import yaml

from edge_agent.wire.topics import DeviceIdentity
from stream_processor.erasure.book import ErasureBook
from stream_processor.erasure.progress import ErasureProgress, ErasureStatus, Waived
from stream_processor.erasure.waiver import WaiverBook
from stream_processor.notices.archive import NoticeArchive
from stream_processor.notices.config import SiteNotice
from stream_processor.notices.view import NoticeContent
from stream_processor.web.compliance import Milestones
from stream_processor.web.erasures import ErasureReads
from stream_processor.web.tokens import Role, TokenBook
from tests.erasure.doubles import SUBJECT, request
from tests.support.web import EXAMPLE_CAMERAS

CMD = "0190f0a0-0000-7000-8000-00000000000a"


def test_tokens_and_sessions(rights_db: Any) -> None:
    book = TokenBook(rights_db)
    secret, token = book.create("acme", Role.PRIVACY_OFFICER, "desk", ttl_s=3600)
    assert book.authenticate(secret) == token and book.authenticate(secret + "x") is None
    cookie, session = book.open_session(token)
    assert book.session(cookie) == session
    assert [t.id for t in book.list("acme")] == [token.id] and book.list("bolt") == []
    assert book.revoke(token.id).revoked_at_ms is not None
    assert book.session(cookie) is None and book.authenticate(secret) is None
    assert book.purge_sessions() == 0


def test_notice_versions(rights_db: Any) -> None:
    site = SiteNotice.model_validate(yaml.safe_load(EXAMPLE_CAMERAS.read_text())["sites"][0])
    archive = NoticeArchive(rights_db)
    content = NoticeContent(site, site.cameras[0], ())
    first = archive.current(content)
    assert archive.current(content) == first  # unchanged content: the same version
    tenant, site_id, camera = content.key
    assert archive.history(tenant, site_id, camera) == [first]
    assert archive.document(tenant, site_id, camera, first.version) == content.doc()
    assert archive.document(tenant, site_id, camera, first.version + 1) is None


def test_compliance_milestones_keep_the_first_time(rights_db: Any) -> None:
    m = Milestones(rights_db)
    assert m.get("acme", "filing") is None
    assert m.reached("acme", "filing", 5_000_000_000_000) == 5_000_000_000_000
    assert m.reached("acme", "filing", 6_000_000_000_000) == 5_000_000_000_000


def test_erasure_progress_receipt_join_and_waivers(rights_db: Any) -> None:
    book = ErasureBook(rights_db)
    r = request()
    p = ErasureProgress.start(r, CMD, [("g1", "d1")])
    assert book.add(p, 1) is True and book.add(p, 2) is False
    assert book.find(None, CMD) == r.request_id == book.find(r.request_id, "other")
    book.mark_sent(r.request_id, 10)
    assert [x.request.request_id for x in book.pending(sent_before_ms=11)] == [r.request_id]
    assert book.pending(sent_before_ms=10) == []
    assert len(book.pending_for_subject("acme", r.site, SUBJECT)) == 1
    waiver = Waived(reason="destroyed", by="po-lee", at_ms=3, audit_seq=7)
    book.update(r.request_id, lambda x: x.with_waiver("g1/d1", waiver).with_deletions([]), 3)
    done = book.get(r.request_id)
    assert done is not None and done.status is ErasureStatus.COMPLETE
    assert [x.request.request_id for x in book.unfinished()] == [r.request_id]
    book.mark_completed(r.request_id, 4)
    assert book.completed_at(r.request_id) == 4 and book.unfinished() == []
    assert [x.request.request_id for x in book.completed_since(4)] == [r.request_id]
    now = int(time.time() * 1000)
    summary = ErasureReads(rights_db).of_tenant("acme", now, sla_s=3600)
    assert (summary.completed, summary.pending) == (1, 0)
    assert summary.requests[0].receipt_issued is False
    waivers = WaiverBook(rights_db)
    gate = DeviceIdentity("acme", r.site, "g1", "d1")
    waivers.record(gate, waiver)
    waivers.record(gate, Waived(reason="stolen", by="po-kim", at_ms=9, audit_seq=8))
    assert waivers.retired("acme", r.site) == {
        "g1/d1": Waived(reason="stolen", by="po-kim", at_ms=9, audit_seq=8)
    }
