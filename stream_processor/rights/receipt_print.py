"""A printable erasure receipt: what was erased, in Chinese and English, with the whole
signed receipt in a QR code so the paper copy can be verified (scan → /receipt or
``facegate audit verify``) without anyone retyping it.

Chinese needs a CJK font (see notices/sheet.py); without one the page is in English.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stream_processor.audit.note import Note, NoteError
from stream_processor.audit.tlog import TreeHead
from stream_processor.errors import InvalidInput
from stream_processor.notices.sheet import DPI, PAGE, _fit, _font, find_cjk_font
from stream_processor.rights.receipt_qr import qr_payload
from stream_processor.rights.receipts import ErasureReceipt

MARGIN = 110


@dataclass(frozen=True)
class PrintedReceipt:
    path: Path
    qr_box: tuple[int, int, int, int] | None  # None: too large for one QR code
    chinese: bool


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _lines(receipt: ErasureReceipt, chinese: bool, verify_url: str | None) -> list[str]:
    c = receipt.claims

    def both(zh: str, en: str) -> str:
        return f"{zh} / {en}" if chinese else en

    scope = (
        ", ".join(c.scope.purposes) if c.scope.purposes is not None else both("全部", "everything")
    )
    out = [
        f"{both('申请编号', 'Request')}: {c.request_id}",
        f"{both('小区', 'Site')}: {c.tenant}/{c.site}",
        f"{both('假名编号', 'Pseudonym')}: {c.subject}",
        f"{both('范围', 'Scope')}: {scope}",
        f"{both('申请', 'Requested')}: {_when(c.requested_at_ms)}",
        f"{both('完成', 'Completed')}: {_when(c.completed_at_ms)}",
        "",
        both("已删除", "Deleted") + ":",
        *(f"  {d.count} × {d.what} ({d.where})" for d in c.deletions),
        both("确认删除的设备", "Devices that confirmed") + ":",
        *(
            f"  {d.gate}/{d.device}: {d.templates_removed} template(s), "
            f"{d.outbox_events_purged} queued event(s), {_when(d.acked_at_ms)}"
            for d in c.devices
        ),
        *(
            f"  Kafka {k.topic}: {both('最后副本消失于', 'gone by')} {_when(k.gone_by_ms)}"
            for k in c.kafka
        ),
        "",
        f"{both('审计日志', 'Audit log')}: {receipt.audit.log_id} #{receipt.audit.seq}",
        f"  {receipt.audit.hash}",
        f"{both('签名密钥', 'Signing key')}: {receipt.key_id}",
        *_witness_lines(receipt, both),
    ]
    if verify_url:
        out.append(f"{both('核验', 'Verify')}: {verify_url}")
    out.append("facegate audit verify --receipt receipt.json")
    return out


def cosigners(receipt: ErasureReceipt) -> list[tuple[str, int]]:
    """(name, unix time) of each cosignature line the witnessed proof carries, as stated
    (the /receipt page and ``audit verify`` check them against the witnesses' keys)."""
    if receipt.witnessed is None:
        return []
    try:
        note = Note.parse(receipt.witnessed.checkpoint)
        origin = TreeHead.parse(note.text).origin
    except NoteError:
        return []
    return [
        (s.name, int.from_bytes(s.sig[:8], "big"))
        for s in note.signatures
        if s.name != origin and len(s.sig) == 72
    ]


def _witness_lines(receipt: ErasureReceipt, both: Callable[[str, str], str]) -> list[str]:
    names = cosigners(receipt)
    if not names:
        return [both("尚无独立见证", "Not yet witnessed by an independent party")]
    return [
        f"{both('独立见证方', 'Witnessed by')}: {name} ({_when(t * 1000)})" for name, t in names
    ] + [both("见证方已联署包含此删除的日志检查点", "They cosigned a log checkpoint holding it")]


def render_receipt(
    receipt: ErasureReceipt, out: Path, verify_url: str | None = None, font: Path | None = None
) -> PrintedReceipt:
    """Write a one-page PDF or PNG (by ``out``'s suffix)."""
    try:
        import segno
        from PIL import Image, ImageDraw
    except ImportError as exc:
        raise ImportError(
            f"printing a receipt needs {exc.name}; run: pip install 'facegate[cloud]'"
        ) from exc
    suffix = out.suffix.lower()
    if suffix not in (".png", ".pdf"):
        raise InvalidInput("the receipt is printed as .png or .pdf")
    cjk = find_cjk_font(font)
    title_font, body_font = _font(cjk, 52), _font(cjk, 26)
    page = Image.new("L", PAGE, 255)
    draw = ImageDraw.Draw(page)
    title = "删除回执 / Erasure receipt" if cjk else "Erasure receipt"
    draw.text((MARGIN, MARGIN), title, fill=0, font=title_font)
    y = MARGIN + 90
    width = PAGE[0] - 2 * MARGIN
    for line in _lines(receipt, cjk is not None, verify_url):
        draw.text((MARGIN, y), _fit(draw, line, body_font, width), fill=0, font=body_font)
        y += 36
    qr_box: tuple[int, int, int, int] | None = None
    try:
        qr = segno.make(qr_payload(receipt), error="l", micro=False)
    except segno.DataOverflowError:
        draw.text(
            (MARGIN, y + 20),
            "(too large for one QR code: keep the JSON file)",
            fill=0,
            font=body_font,
        )
    else:
        room = min(PAGE[1] - MARGIN - (y + 30), width)
        modules = qr.symbol_size(scale=1, border=4)[0]
        buf = io.BytesIO()
        qr.save(buf, kind="png", scale=max(2, room // modules), border=4)
        buf.seek(0)
        image = Image.open(buf).convert("L")
        left = (PAGE[0] - image.width) // 2
        page.paste(image, (left, y + 30))
        qr_box = (left, y + 30, left + image.width, y + 30 + image.height)
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".pdf":
        page.convert("RGB").save(out, "PDF", resolution=DPI)
    else:
        page.save(out, dpi=(DPI, DPI))
    return PrintedReceipt(out, qr_box, cjk is not None)
