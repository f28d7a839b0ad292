"""``facegate office enrol|check`` on the real Kafka with real photos: one office command
enrols and records the consent; check names the resident whose ledger step is missing."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge_agent.pseudonym import (
    consent_digest,
    load_site_secret,
    new_site_secret,
    pseudonym,
    write_site_secret,
)
from tests.conftest import FACEGATE
from tests.support.edge import write_config
from tests.support.processor import BASE_POLICY, TENANT

pytestmark = pytest.mark.component


def test_one_office_command_enrols_and_grants_and_check_names_a_missing_step(  # type: ignore[no-untyped-def]
    pipeline, assets, tmp_path: Path
) -> None:
    def run(*args: str, **env: str) -> Any:
        return subprocess.run([FACEGATE, *args], env={**pipeline.env, **env},
                              capture_output=True, text=True, timeout=180)

    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(BASE_POLICY))
    assert run("policy", "apply", str(policy)).returncode == 0
    office = tmp_path / "office"
    office.mkdir()
    write_site_secret(new_site_secret(TENANT, "site-1"), office / "site.secret")
    config = str(write_config(office, assets, office / "device.json"))
    secret = load_site_secret(office / "site.secret")

    done = run("office", "enrol", "--config", config, "--resident-id", "R-1", "--photo",
               str(assets.photo("obama.jpg")), "--consent-ref", "CONSENT-1", "--adult")
    assert done.returncode == 0, done.stderr
    assert f"{pseudonym(secret, 'R-1')}: enrolled in the office gallery and consent" in done.stdout
    clean = run("office", "check", "--config", config)
    assert clean.returncode == 0 and "0 residents with a missing step" in clean.stdout
    shown = run("consent", "show", "--tenant", TENANT, "--site", "site-1", "--resident-id", "R-1",
                "--site-secret", str(office / "site.secret"))
    assert "access_control\tgranted" in shown.stdout
    assert f"evidence={consent_digest(secret, 'CONSENT-1')}" in shown.stdout
    assert "CONSENT-1" not in shown.stdout  # the form's number stays on paper

    # Enrolled at the gate-side command only: the ledger step is named as missing.
    edge_only = run("edge", "enroll", "--config", config, "--resident-id", "R-2", "--photo",
                    str(assets.photo("biden.jpg")), "--consent-ref", "CONSENT-2", "--adult")
    assert edge_only.returncode == 0, edge_only.stderr
    gap = run("office", "check", "--config", config)
    assert gap.returncode == 1
    assert f"{pseudonym(secret, 'R-2')}\tconsent ledger: no grant for access_control" in gap.stdout

    # A purpose the policy does not declare, or a ledger out of reach: nothing is enrolled.
    before = (office / "gallery.fgg").read_bytes()
    undeclared = run("office", "enrol", "--config", config, "--resident-id", "R-3", "--photo",
                     str(assets.photo("obama2.jpg")), "--consent-ref", "C-3", "--adult",
                     "--purpose", "staff_attendance")
    assert undeclared.returncode != 0 and "not declared" in undeclared.stderr
    down = run("office", "enrol", "--config", config, "--resident-id", "R-3", "--photo",
               str(assets.photo("obama2.jpg")), "--consent-ref", "C-3", "--adult",
               FACEGATE_KAFKA_BOOTSTRAP="127.0.0.1:1")
    assert down.returncode == 69 and down.stderr.startswith("Error: ")
    assert (office / "gallery.fgg").read_bytes() == before
