"""Numbers from outside the web app (query strings, a witness's posted cosignature) are
bounded before they reach a database or ``int()``: an extreme one is answered with a
4xx and a message, never a 500 — not SQLite's OverflowError past 2**63 - 1, not the
ValueError of a digit that is not ASCII ("²" passes ``str.isdigit``)."""

from __future__ import annotations

import itertools
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from edge_agent.wire.bounds import MAX_TIME_MS
from stream_processor.audit.note import COSIGNATURE_V1, Note, Signer
from stream_processor.audit.tlog import TreeHead
from stream_processor.witness.state import load_or_create_key
from tests.support.tlog import WITNESS, TlogRig, tlog_rig  # noqa: F401 - the fixture
from tests.web.conftest import ConsoleRig, auth

pytestmark = pytest.mark.unit

NOW_MS = int(time.time() * 1000)
#: Past every storage type's end, signed and not, and digits ``int()`` cannot read.
EXTREMES = [
    "-1", str(2**31), str(2**53), str(2**63 - 1), str(2**63), str(2**64), "9" * 40,
    str(MAX_TIME_MS + 1), "²", "١٢٣", "1e308", "NaN", "Infinity", "0x10", "1_000",
]  # fmt: skip
PLAUSIBLE = [str(NOW_MS - 3_600_000), str(NOW_MS)]


def beyond_time_bounds(text: str) -> bool:
    """An integer outside 0..MAX_TIME_MS (2100): one the store could not hold, or no time."""
    digits = text.removeprefix("-")
    return digits.isascii() and digits.isdigit() and not 0 <= int(text) <= MAX_TIME_MS


def test_an_extreme_time_range_of_the_aggregates_is_a_4xx(console: ConsoleRig) -> None:
    viewer = auth(console.token("acme", "viewer"))

    async def go(client: Any) -> None:
        for since, until in itertools.product(EXTREMES + PLAUSIBLE, repeat=2):
            resp = await client.get(
                "/api/v1/aggregates", params={"since_ms": since, "until_ms": until}, headers=viewer
            )
            what = f"since_ms={since} until_ms={until}: {resp.status} {await resp.text()}"
            assert resp.status < 500, what
            if beyond_time_bounds(since) or beyond_time_bounds(until):
                assert resp.status == 422, what
                assert set(await resp.json()) == {"error", "detail"}, what

    console.run(go)


def test_an_extreme_notice_version_is_the_current_page_or_404(console: ConsoleRig) -> None:
    async def go(client: Any) -> None:
        for version in [*EXTREMES, "1", "0"]:
            resp = await client.get(
                "/notice/acme/north-garden/gate-main-1", params={"version": version}
            )
            assert resp.status in (200, 404), f"version={version}: {resp.status}"

    console.run(go)


def fetch(url: str, data: bytes | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_extreme_numbers_of_the_audit_endpoints_are_a_4xx(
    tlog_rig: TlogRig,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    rig = tlog_rig
    rig.add(3)
    rig.checkpoint()
    for n in map(urllib.parse.quote, EXTREMES):
        for path in (
            f"/audit/checkpoint?size={n}",
            f"/audit/proof/inclusion?index={n}&size={n}",
            f"/audit/proof/inclusion?index=0&size={n}",
            f"/audit/proof/consistency?old=1&new={n}",
        ):
            status = fetch(rig.url + path)
            assert 400 <= status < 500, f"{path}: {status}"
    # Well-formed checkpoints cosigned by the accepted witness, of sizes no SQLite
    # INTEGER holds (the checkpoint format allows 19 digits).
    with urllib.request.urlopen(rig.url + "/audit/checkpoint", timeout=10) as resp:
        real = TreeHead.parse(Note.parse(resp.read().decode()).text)
    signer = Signer(WITNESS, load_or_create_key(tmp_path / "witness"), COSIGNATURE_V1)
    for size in (2**63, 10**19 - 1):
        text = TreeHead(real.origin, size, real.root).text()
        note = Note(text, (signer.sign(text),))
        status = fetch(rig.url + "/audit/cosignature", note.encode())
        assert 400 <= status < 500, f"cosignature of size {size}: {status}"
