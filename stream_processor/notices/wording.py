"""The notice's words in Chinese and English, and how it writes a retention and a time."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from stream_processor.notices.config import Lang

L: dict[str, tuple[str, str]] = {
    "title": ("摄像头告知", "Camera notice"),
    "camera": ("摄像头", "Camera"),
    "location": ("位置", "Location"),
    "installed_on": ("安装日期", "Installed on"),
    "operator": ("运营方（个人信息处理者）", "Operated by (personal information handler)"),
    "installer": ("安装方", "Installed by"),
    "privacy_contact": ("个人信息保护联系人", "Privacy contact"),
    "purposes": ("使用目的", "Purposes"),
    "legal_basis": ("法律依据", "Legal basis"),
    "on_device": ("在设备上处理的内容", "What is processed on the device"),
    "on_device_face": (
        "人脸检测与比对只在本门禁设备上完成。设备只保存已单独同意的住户的人脸特征（加密存储；"
        "未满14周岁者须监护人同意）。照片和人脸特征从不离开设备。",
        "Face detection and matching happen only on this gate device. It holds face templates "
        "only of residents who gave separate consent (encrypted; a guardian consents for a "
        "child under 14). Images and face templates never leave the device.",
    ),
    "on_device_card": (
        "本设备不做人脸识别，只读取门禁卡或密码。",
        "This device does no face recognition; it reads key cards or PINs only.",
    ),
    "leaves": ("离开设备的内容", "What leaves the device"),
    "leaves_text": (
        "仅匿名化的通行事件：本小区专用的假名编号、结果、门、时间。不含姓名、身份证号、照片或人脸特征；"
        "未识别的人脸只计数，不保存。",
        "Only anonymized passage events: a pseudonym used at this site only, the outcome, the "
        "gate and the time. No name, ID number, photo or face template; unrecognised faces "
        "are counted, never stored.",
    ),
    "storage": ("事件存储位置", "Where events are stored"),
    "retention": ("保存期限（当前生效的规则）", "How long events are kept (rules in force now)"),
    "kind": ("事件", "Event"),
    "purpose": ("目的", "Purpose"),
    "kept": ("保存", "Kept for"),
    "not_stored": ("不保存，仅计数", "not stored, counted only"),
    "no_rule": ("无生效规则，不保存", "no rule in force, not stored"),
    "keycard": ("不想刷脸？申请门禁卡", "Prefer not to use your face? Get a key card"),
    "keycard_note": (
        "刷脸从来不是进门的唯一方式。您可以随时申请门禁卡，不会因此受到任何不利对待。",
        "Face recognition is never the only way in. You can ask for a key card at any time, "
        "and you will not be treated any worse for it.",
    ),
    "keycard_form": ("在线申请门禁卡", "Ask for a key card online"),
    "unit": ("房号", "Flat / unit"),
    "contact_field": ("联系电话或邮箱", "Phone or e-mail"),
    "send": ("提交申请", "Send request"),
    "withdraw": ("撤回同意", "Withdraw your consent"),
    "erasure": ("要求删除您的数据", "Ask for your data to be erased"),
    "erasure_note": (
        "删除无需您证明任何风险。完成后您会收到一份带签名的回执，任何人（包括法院或公证处）都可以用公开的"
        "审计日志独立核验。",
        "You need not show any risk to ask. When the erasure is done you get a signed receipt "
        "that anyone — a court or a notary too — can check against the published audit log.",
    ),
    "verify": ("核验删除回执", "Check an erasure receipt"),
    "verify_text": (
        "公开的审计日志和运营方公钥（指纹如下）可供任何人下载，用 facegate audit verify 核验回执：",
        "Anyone can download the published audit log and the operator's public key "
        "(fingerprint below) and check a receipt with facegate audit verify:",
    ),
    "version": ("告知版本", "Notice version"),
    "since": ("生效于", "in force since"),
    "old_version": (
        "这是历史版本，不是当前版本。",
        "This is an earlier version, not the one in force.",
    ),
    "current": ("查看当前版本", "See the version in force"),
    "phone": ("电话", "Phone"),
    "email": ("邮箱", "E-mail"),
    "address": ("地址", "Address"),
    "hours": ("办公时间", "Office hours"),
    "cameras": ("本小区的摄像头", "Cameras at this site"),
    "other_lang": ("English", "中文"),
    "received": ("申请已收到", "Request received"),
    "received_text": (
        "我们已收到您的门禁卡申请。申请编号：",
        "We have your key-card request. Request number:",
    ),
    "bad_request": ("申请未能提交", "The request could not be sent"),
}

KINDS: dict[str, tuple[str, str]] = {
    "face_match": ("人脸识别通行", "Face recognition passage"),
    "unknown_face": ("未识别的人脸", "Unrecognised face"),
    "key_card": ("门禁卡通行", "Key card passage"),
    "pin": ("密码通行", "PIN passage"),
    "manual_open": ("人工开门", "Opened by staff"),
}

_UNITS = (
    (365 * 86400, "年", "year"),
    (86400, "天", "day"),
    (3600, "小时", "hour"),
    (60, "分钟", "minute"),
    (1, "秒", "second"),
)


def t(key: str, lang: Lang) -> str:
    zh, en = L[key]
    return zh if lang == "zh" else en


def format_retention(value: dt.timedelta | None, lang: Lang) -> str:
    if value is None:
        return t("no_rule", lang)
    seconds = int(value.total_seconds())
    if seconds == 0:
        return t("not_stored", lang)
    for size, zh, en in _UNITS:
        if seconds % size == 0:
            n = seconds // size
            return f"{n} {zh}" if lang == "zh" else f"{n} {en}{'' if n == 1 else 's'}"
    return f"{seconds} s"


def format_time(ms: int, tz_name: str = "UTC") -> str:
    """``ms`` in the site's time zone (UTC if the zone database lacks it)."""
    try:
        tz: dt.tzinfo = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        tz, tz_name = dt.UTC, "UTC"
    when = dt.datetime.fromtimestamp(ms / 1000, tz=tz)
    return when.strftime(f"%Y-%m-%d %H:%M ({tz_name})")


__all__ = ["KINDS", "L", "format_retention", "format_time", "t"]
