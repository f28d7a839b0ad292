"""The printable QR sheet: every code decodes (OpenCV) to its own camera's notice URL."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from stream_processor.notices.config import load_registry
from stream_processor.notices.sheet import render_sheet
from tests.conftest import FACEGATE, REPO
from tests.support.web import EXAMPLE_CAMERAS

BASE = "https://gate.example.com/fg"


def decode_cell(image: np.ndarray, box: tuple[int, int, int, int]) -> str:
    left, top, right, bottom = box
    text, _, _ = cv2.QRCodeDetector().detectAndDecode(image[top:bottom, left:right])
    return str(text)


@pytest.mark.unit
def test_each_qr_code_decodes_to_its_camera_page(tmp_path: Path) -> None:
    site = load_registry(EXAMPLE_CAMERAS).sites[0]
    sheet = render_sheet(site, BASE, tmp_path / "sheet.png")
    assert len(sheet.files) == 1
    image = cv2.imread(str(sheet.files[0]))
    assert image is not None
    expected = {c.id: f"{BASE}/notice/acme/north-garden/{c.id}" for c in site.cameras}
    assert {c.camera: c.url for c in sheet.cells} == expected
    for cell in sheet.cells:
        assert decode_cell(image, cell.qr_box) == expected[cell.camera]
    # And all at once, as a phone sees the page.
    ok, decoded, _, _ = cv2.QRCodeDetector().detectAndDecodeMulti(image)
    assert ok
    assert set(decoded) == set(expected.values())


@pytest.mark.unit
def test_many_cameras_spread_over_pages(tmp_path: Path) -> None:
    registry = load_registry(EXAMPLE_CAMERAS)
    site = registry.sites[0]
    cams = [site.cameras[0].model_copy(update={"id": f"cam-{i:02d}"}) for i in range(8)]
    big = site.model_copy(update={"cameras": cams})
    sheet = render_sheet(big, BASE, tmp_path / "big.png")
    assert [f.name for f in sheet.files] == ["big-1.png", "big-2.png"]
    last = sheet.cells[-1]
    assert last.page == 1
    image = cv2.imread(str(sheet.files[1]))
    assert decode_cell(image, last.qr_box).endswith("/cam-07")


@pytest.mark.e2e
def test_cli_writes_a_pdf_sheet(tmp_path: Path) -> None:
    out = tmp_path / "north.pdf"
    done = subprocess.run(
        [
            FACEGATE,
            "notice",
            "sheet",
            "--site",
            "north-garden",
            "--cameras",
            str(EXAMPLE_CAMERAS),
            "--base-url",
            BASE,
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes().startswith(b"%PDF")
    assert f"gate-main-1: {BASE}/notice/acme/north-garden/gate-main-1" in done.stdout
    bad = subprocess.run(
        [FACEGATE, "notice", "sheet", "--site", "nowhere", "--cameras", str(EXAMPLE_CAMERAS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0
    assert "no site named 'nowhere'" in bad.stderr


@pytest.mark.e2e
def test_validate_config_names_the_error(tmp_path: Path) -> None:
    broken = tmp_path / "cameras.yaml"
    broken.write_text(
        EXAMPLE_CAMERAS.read_text().replace(
            "purposes: [access_control]\n", "purposes: [public_security]\n", 1
        )
    )
    done = subprocess.run(
        [FACEGATE, "notice", "validate-config", "--cameras", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "public_security" in done.stderr
    zoned = tmp_path / "zoned.yaml"
    zoned.write_text(
        EXAMPLE_CAMERAS.read_text().replace(
            "    purposes:\n", "    timezone: Mars/Olympus\n    purposes:\n", 1
        )
    )
    bad_zone = subprocess.run(
        [FACEGATE, "notice", "validate-config", "--cameras", str(zoned)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad_zone.returncode == 1 and "unknown time zone 'Mars/Olympus'" in bad_zone.stderr
    ok = subprocess.run(
        [FACEGATE, "notice", "validate-config", "--cameras", str(EXAMPLE_CAMERAS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0 and "3 camera(s)" in ok.stdout


@pytest.mark.unit
def test_without_a_cjk_font_the_sheet_is_english_and_still_decodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stream_processor.notices import sheet as sheet_module

    monkeypatch.setattr(sheet_module, "CJK_FONTS", ())
    site = load_registry(EXAMPLE_CAMERAS).sites[0]
    result = render_sheet(site, BASE, tmp_path / "en.png")
    assert not result.chinese_labels
    image = cv2.imread(str(result.files[0]))
    for cell in result.cells:
        assert decode_cell(image, cell.qr_box) == cell.url


def test_web_serves_each_camera_qr_and_the_site_sheet(web_rig) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from tests.support.web import serve

    async def go() -> tuple[bytes, int, bytes, str]:
        async with serve(web_rig) as client:
            qr = await (await client.get("/notice/acme/north-garden/gate-east-1/qr.png")).read()
            missing = (await client.get("/notice/acme/north-garden/nope/qr.png")).status
            resp = await client.get("/notice/acme/north-garden/sheet.pdf")
            return qr, missing, await resp.read(), resp.headers["Content-Disposition"]

    qr, missing, pdf, disposition = asyncio.run(go())
    image = cv2.imdecode(np.frombuffer(qr, np.uint8), cv2.IMREAD_GRAYSCALE)
    text, _, _ = cv2.QRCodeDetector().detectAndDecode(image)
    assert text == "http://127.0.0.1:8080/notice/acme/north-garden/gate-east-1"
    assert missing == 404
    assert pdf.startswith(b"%PDF") and "notice-sheet-acme-north-garden.pdf" in disposition


@pytest.mark.e2e
def test_notice_purposes_are_checked_against_the_policy(tmp_path: Path) -> None:
    policy = REPO / "deploy" / "config" / "retention.example.yaml"
    cmd = [FACEGATE, "notice", "validate-config", "--cameras", str(EXAMPLE_CAMERAS)]
    ok = subprocess.run(
        [*cmd, "--policy", str(policy)], capture_output=True, text=True, timeout=120
    )
    assert ok.returncode == 0, ok.stderr

    # The policy adds a purpose at every camera that the notices do not state: a hidden use.
    hidden = tmp_path / "hidden.yaml"
    hidden.write_text(
        policy.read_text()
        .replace(
            "purposes:\n  access_control:\n",
            "purposes:\n  visitor_statistics:\n"
            "    description: count visitors per hour for staffing\n"
            "    legal_basis: the staffing clause of the management contract\n"
            "  access_control:\n",
        )
        .replace(
            "camera_purposes: [access_control]",
            "camera_purposes: [access_control, visitor_statistics]",
        )
    )
    bad = subprocess.run(
        [*cmd, "--policy", str(hidden)], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert (
        "error: camera gate-main-1: the policy allows purposes ['visitor_statistics']" in bad.stderr
    )


@pytest.mark.unit
def test_stated_but_not_allowed_is_a_warning() -> None:
    from stream_processor.notices.consistency import check_site

    site = load_registry(EXAMPLE_CAMERAS).sites[0]
    found = check_site(
        site, lambda s, g, d: frozenset() if g == "garage" else frozenset({"access_control"})
    )
    assert [(m.camera, m.severity) for m in found] == [("garage-card-1", "warning")]
