"""``facegate office check`` with an unreadable record on the consent ledger: the record is
named by where it is and why (never by what it holds), every other record is still
checked, and the command exits 1."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from edge_agent.pseudonym import load_site_secret, new_site_secret, pseudonym, write_site_secret
from stream_processor.cli.office import Unreadable, readable_consents
from stream_processor.policy.consent import ConsentRecord, ConsentStatus, GivenBy
from tests.conftest import FACEGATE
from tests.support.edge import write_config
from tests.support.processor import TENANT
from tests.support.records import produce

#: A hostile or broken writer's record: a name and an id number where a grant should be.
HOSTILE = b'{"tenant": "acme", "subject": "Jane Q. Resident", "id_number": "AB1234567"}'
PERSONAL = ("Jane", "Resident", "AB1234567")


def grant(subject: str, site: str = "site-1") -> ConsentRecord:
    return ConsentRecord(
        tenant=TENANT, site=site, subject=subject, purpose="access_control",
        status=ConsentStatus.GRANTED, given_by=GivenBy.SELF, evidence_ref="cr1_" + "0" * 32,
        at_ms=1_700_000_000_000,
    )  # fmt: skip


@pytest.mark.unit
def test_unreadable_records_are_set_apart_by_place_and_reason_only() -> None:
    ok = grant("ps1_" + "a" * 32)
    located = [(0, 7, HOSTILE), (1, 3, ok.encode()), (0, 2, b"\xff not json")]
    good, bad = readable_consents(located)
    assert good == [ok]
    assert bad == [Unreadable(0, 2, "bad_json"), Unreadable(0, 7, "invalid_field")]
    shown = json.dumps([u._asdict() for u in bad])
    assert not any(word in shown for word in PERSONAL)


@pytest.mark.component
def test_office_check_names_a_bad_record_checks_the_rest_and_exits_1(  # type: ignore[no-untyped-def]
    pipeline, assets, tmp_path: Path
) -> None:
    office = tmp_path / "office"
    office.mkdir()
    write_site_secret(new_site_secret(TENANT, "site-1"), office / "site.secret")
    config = str(write_config(office, assets, office / "device.json"))
    absent = pseudonym(load_site_secret(office / "site.secret"), "R-404")
    record = grant(absent)
    # The bad record first: before the fix the check stopped on it and saw nothing else.
    bad_key = b"acme/site-1/x/access_control"
    produce(pipeline.stack.settings().kafka_bootstrap, pipeline.topics().consent,
            [(bad_key, HOSTILE), (record.key, record.encode())])  # fmt: skip

    def run(*args: str) -> Any:
        argv = [FACEGATE, "office", "check", "--config", config, *args]
        return subprocess.run(argv, env=pipeline.env, capture_output=True, text=True, timeout=120)

    text = run()
    assert text.returncode == 1, text.stderr
    assert "Traceback" not in text.stderr
    # The grant after the bad record was checked: its resident has no templates here.
    assert absent in text.stdout
    assert (f"unreadable consent record: {pipeline.topics().consent} partition "
            in text.stdout)  # fmt: skip
    assert "(invalid_field); skipped" in text.stdout
    assert "1 consent records could not be read" in text.stdout
    assert not any(word in text.stdout + text.stderr for word in PERSONAL)

    doc = json.loads(run("--json").stdout)
    assert [m["pseudonym"] for m in doc["missing"]] == [absent]
    assert [(u["reason"]) for u in doc["unreadable"]] == ["invalid_field"]
    assert isinstance(doc["unreadable"][0]["offset"], int)
