"""Camera notice pages: zh and en content, retention live from the policy, versions."""

from __future__ import annotations

import asyncio
import re

from tests.support.web import WebRig, serve

PAGE = "/notice/acme/north-garden/gate-main-1"


def retention_cells(html: str) -> dict[str, str]:
    rows = re.findall(
        r'<tr data-kind="([a-z_]+)" data-purpose="[a-z_]+">.*?<td class="retention">(.*?)</td>',
        html,
    )
    return dict(rows)


def get(rig: WebRig, path: str, **headers: str) -> tuple[int, str, dict[str, str]]:
    async def go() -> tuple[int, str, dict[str, str]]:
        async with serve(rig) as client:
            resp = await client.get(path, headers=headers)
            return resp.status, await resp.text(), dict(resp.headers)

    return asyncio.run(go())


def test_chinese_page_states_everything(web_rig: WebRig) -> None:
    status, html, headers = get(web_rig, PAGE + "?lang=zh")
    assert status == 200
    assert headers["Content-Language"] == "zh-CN"
    assert 'name="viewport"' in html  # readable on a phone
    for text in [
        "摄像头告知",
        "北苑花园小区",
        "南大门入口左侧",
        "示例物业服务有限公司",  # operator
        "示例安防工程有限公司",  # installer
        "privacy@example.com",
        "个人信息保护法",  # legal basis
        "在设备上处理的内容",
        "照片和人脸特征从不离开设备",
        "仅匿名化的通行事件",
        "天津",  # where events are stored
        "申请门禁卡",
        "撤回同意",
        "要求删除您的数据",
        "带签名的回执",
        "告知版本 1",
        "(Asia/Shanghai)",  # times in the site's zone
        'href="tel:+862200000000"',
    ]:
        assert text in html, text
    assert retention_cells(html) == {
        "face_match": "30 天",
        "unknown_face": "不保存，仅计数",
        "key_card": "90 天",
        "pin": "90 天",
        "manual_open": "90 天",
    }


def test_english_page_states_everything(web_rig: WebRig) -> None:
    status, html, headers = get(web_rig, PAGE, **{"Accept-Language": "en-GB,en;q=0.9"})
    assert status == 200
    assert headers["Content-Language"] == "en"
    for text in [
        "Camera notice",
        "North Garden Residences",
        "Example Property Services Co., Ltd.",
        "Example Security Installations Ltd.",
        "Legal basis",
        "Images and face templates never leave the device",
        "Only anonymized passage events",
        "mainland China (Tianjin)",
        "Get a key card",
        "Withdraw your consent",
        "Ask for your data to be erased",
        "signed receipt",
        "Notice version 1",
    ]:
        assert text in html, text
    assert retention_cells(html)["face_match"] == "30 days"
    assert 'href="/notice/acme/north-garden/gate-main-1?lang=zh"' in html
    # Where to check a receipt: the published log and the operator key's fingerprint.
    assert 'href="/audit/log.jsonl"' in html
    assert web_rig.audit.key.key_id in html


def test_default_language_is_chinese_and_headers_forbid_caching(web_rig: WebRig) -> None:
    _, html, headers = get(web_rig, PAGE)
    assert "摄像头告知" in html
    assert "no-cache" in headers["Cache-Control"]


def test_card_only_camera_says_no_face_recognition(web_rig: WebRig) -> None:
    _, html, _ = get(web_rig, "/notice/acme/north-garden/garage-card-1?lang=en")
    assert "does no face recognition" in html
    assert "face_match" not in retention_cells(html)


def test_retention_change_shows_at_once_with_a_new_version(web_rig: WebRig) -> None:
    _, before, _ = get(web_rig, PAGE + "?lang=en")
    assert retention_cells(before)["face_match"] == "30 days"
    assert "Notice version 1" in before

    web_rig.audit.clock.advance(60)
    web_rig.set_face_retention("7d")
    _, after, _ = get(web_rig, PAGE + "?lang=en")
    assert retention_cells(after)["face_match"] == "7 days"
    assert "Notice version 2" in after

    # The earlier version stays readable, marked as not in force.
    _, old, _ = get(web_rig, PAGE + "?lang=en&version=1")
    assert retention_cells(old)["face_match"] == "30 days"
    assert "earlier version" in old

    # Each version is in the audit log, by digest.
    notices = [e for e in web_rig.audit.log.entries() if e.type == "notice_version"]
    assert [e.body["version"] for e in notices] == [1, 2]


def test_rule_removed_means_not_stored(web_rig: WebRig) -> None:
    web_rig.policy_path.unlink()
    _, html, _ = get(web_rig, PAGE + "?lang=en")
    assert set(retention_cells(html).values()) == {"no rule in force, not stored"}


def test_unknown_camera_is_404(web_rig: WebRig) -> None:
    status, _, _ = get(web_rig, "/notice/acme/north-garden/nope")
    assert status == 404
    assert get(web_rig, "/notice/acme/elsewhere")[0] == 404


def test_site_index_and_health(web_rig: WebRig) -> None:
    status, html, _ = get(web_rig, "/notice/acme/north-garden?lang=en")
    assert status == 200
    assert html.count('href="/notice/acme/north-garden/') == 3
    assert get(web_rig, "/healthz")[0] == 200


def test_config_is_escaped(web_rig: WebRig) -> None:
    text = web_rig.cameras_path.read_text().replace(
        "Main south gate, left of the entrance", "<script>alert(1)</script>"
    )
    web_rig.cameras_path.write_text(text)
    _, html, _ = get(web_rig, PAGE + "?lang=en")
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_a_broken_registry_edit_keeps_the_last_valid_one(web_rig: WebRig) -> None:
    assert get(web_rig, PAGE)[0] == 200
    web_rig.cameras_path.write_text("version: 1\nsites: [{tenant: acme}]\n")
    status, html, _ = get(web_rig, PAGE + "?lang=en")
    assert status == 200 and "North Garden Residences" in html
    assert get(web_rig, "/healthz")[0] == 503
