"""A custom purpose's legal basis is on the camera notice: the notice check refuses a
notice that states a custom purpose without it, and the page prints it."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stream_processor.notices.config import SiteNotice
from stream_processor.notices.consistency import check_custom_purposes
from stream_processor.notices.html import render_notice
from stream_processor.notices.view import NoticeContent
from tests.conftest import FACEGATE, REPO
from tests.support.web import EXAMPLE_CAMERAS

BASIS = {"zh": "服务合同第4条（包裹服务）", "en": "the service contract, clause 4 (parcels)"}


def registry(with_basis: bool) -> dict[str, Any]:
    doc: dict[str, Any] = copy.deepcopy(yaml.safe_load(EXAMPLE_CAMERAS.read_text()))
    site = doc["sites"][0]
    described = {"zh": "让快递员把包裹放进储物柜。", "en": "Let couriers leave parcels."}
    purpose: dict[str, Any] = {"id": "parcel_lockers", "description": described}
    if with_basis:
        purpose["legal_basis"] = BASIS
    site["purposes"].append(purpose)
    for camera in site["cameras"]:
        camera["purposes"].append("parcel_lockers")
    return doc


@pytest.mark.unit
@pytest.mark.parametrize("with_basis", [False, True])
def test_a_custom_purpose_needs_its_legal_basis_on_the_notice(with_basis: bool) -> None:
    site = SiteNotice.model_validate(registry(with_basis)["sites"][0])
    found = check_custom_purposes(site, frozenset({"parcel_lockers"}))
    cameras = [c.id for c in site.cameras]
    assert [(m.camera, m.severity) for m in found] == (
        [] if with_basis else [(c, "error") for c in cameras]
    )
    # A shipped purpose has facegate's fixed description and needs nothing more.
    assert check_custom_purposes(site, frozenset()) == []
    if with_basis:
        content = NoticeContent(site, site.cameras[0], ())
        html = render_notice(content, version=1, since_ms=0, lang="en")
        assert BASIS["en"] in html and "Let couriers leave parcels" in html


@pytest.mark.e2e
def test_notice_validate_config_refuses_a_custom_purpose_without_its_basis(
    tmp_path: Path,
) -> None:
    policy = yaml.safe_load((REPO / "deploy" / "config" / "retention.example.yaml").read_text())
    policy["purposes"]["parcel_lockers"] = {
        "description": "let couriers leave parcels at the lockers",
        "legal_basis": BASIS["en"],
    }
    policy["camera_purposes"].append("parcel_lockers")
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy))
    for with_basis, code in ((False, 1), (True, 0)):
        cameras = tmp_path / f"cameras-{with_basis}.yaml"
        cameras.write_text(yaml.safe_dump(registry(with_basis), allow_unicode=True))
        done = subprocess.run(
            [FACEGATE, "notice", "validate-config", "--cameras", str(cameras), "--policy",
             str(tmp_path / "policy.yaml")], capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == code, done.stdout + done.stderr
        missing = done.stderr.count("is custom: the notice must state its legal basis")
        assert missing == (0 if with_basis else len(registry(False)["sites"][0]["cameras"]))
