"""The printable sheet: one QR code per camera, each linking to that camera's notice page.

A4 pages at 200 dpi, six cameras a page, each cell labelled with the camera,
its location and the URL (for anyone who cannot scan). PNG (one file per
page) or PDF (one file). Chinese labels need a CJK font: pass ``font`` or
install one (Debian: fonts-noto-cjk); without it the sheet is labelled in
English only and says so in the log.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

from stream_processor.errors import InvalidInput
from stream_processor.notices.config import SiteNotice
from stream_processor.notices.view import notice_url

log = logging.getLogger(__name__)

DPI = 200
PAGE = (1654, 2339)  # A4 at 200 dpi
MARGIN = 90
HEADER = 260
COLS, ROWS = 2, 3
QR_PX = 520

#: Where Debian and common distributions put a CJK-capable font.
CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)


def _need(module: str) -> None:
    raise ImportError(f"the notice sheet needs {module}; run: pip install 'facegate[cloud]'")


@dataclass(frozen=True)
class Cell:
    camera: str
    url: str
    page: int
    #: (left, top, right, bottom) of the QR code on its page, in pixels.
    qr_box: tuple[int, int, int, int]


@dataclass(frozen=True)
class Sheet:
    files: list[Path]
    cells: list[Cell]
    chinese_labels: bool


def qr_image(url: str, size_px: int = QR_PX):  # type: ignore[no-untyped-def]
    """The QR code of ``url`` as a PIL image about ``size_px`` wide (quiet zone included)."""
    try:
        import segno
        from PIL import Image
    except ImportError as exc:
        _need(exc.name or "segno/Pillow")
    qr = segno.make(url, error="m", micro=False)
    modules = qr.symbol_size(scale=1, border=4)[0]
    buf = io.BytesIO()
    qr.save(buf, kind="png", scale=max(2, size_px // modules), border=4)
    buf.seek(0)
    return Image.open(buf).convert("L")


def _font(path: str | None, size: int):  # type: ignore[no-untyped-def]
    from PIL import ImageFont

    if path:
        return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


def find_cjk_font(explicit: Path | None = None) -> str | None:
    """``explicit`` if it is a font Pillow can load, else the first CJK font installed."""
    if explicit is not None:
        from PIL import ImageFont

        try:
            ImageFont.truetype(str(explicit), 10)
        except OSError as exc:
            raise InvalidInput(f"{explicit}: not a TrueType/OpenType font ({exc})") from None
        return str(explicit)
    return next((p for p in CJK_FONTS if Path(p).exists()), None)


def _fit(draw, text: str, font, width: int) -> str:  # type: ignore[no-untyped-def]
    """``text``, shortened with an ellipsis until it fits ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def render_sheet(site: SiteNotice, base_url: str, out: Path, font: Path | None = None) -> Sheet:
    """Write the sheet of ``site`` to ``out`` (.png or .pdf); returns the files and cells."""
    try:
        from PIL import Image, ImageDraw
    except ImportError as exc:
        _need(exc.name or "Pillow")
    suffix = out.suffix.lower()
    if suffix not in (".png", ".pdf"):
        raise InvalidInput("the sheet is written as .png or .pdf")
    cjk = find_cjk_font(font)
    if cjk is None:
        log.warning("no CJK font found: the sheet is labelled in English only (pass --font)")
    title_font, label_font, small_font = _font(cjk, 46), _font(cjk, 30), _font(cjk, 22)

    per_page = COLS * ROWS
    cell_w = (PAGE[0] - 2 * MARGIN) // COLS
    cell_h = (PAGE[1] - 2 * MARGIN - HEADER) // ROWS
    pages: list[Image.Image] = []
    cells: list[Cell] = []
    for index, cam in enumerate(site.cameras):
        page_no, slot = divmod(index, per_page)
        if slot == 0:
            page = Image.new("L", PAGE, 255)
            draw = ImageDraw.Draw(page)
            title = site.name.en if cjk is None else f"{site.name.zh} · {site.name.en}"
            draw.text((MARGIN, MARGIN), title, fill=0, font=title_font)
            scan_en = "Camera notice: scan to see who runs this camera, why, how long data is kept"
            draw.text((MARGIN, MARGIN + 70), scan_en, fill=0, font=label_font)
            draw.text(
                (MARGIN, MARGIN + 110),
                "and how to get a key card or ask for erasure.",
                fill=0,
                font=label_font,
            )
            if cjk is not None:
                scan_zh = "摄像头告知：扫码查看运营方、用途、保存期限，申请门禁卡或要求删除"
                draw.text((MARGIN, MARGIN + 155), scan_zh, fill=0, font=label_font)
            pages.append(page)
        page = pages[-1]
        draw = ImageDraw.Draw(page)
        col, row = slot % COLS, slot // COLS
        left = MARGIN + col * cell_w
        top = MARGIN + HEADER + row * cell_h
        url = notice_url(base_url, site.tenant, site.site, cam.id)
        qr = qr_image(url, min(QR_PX, cell_h - 200, cell_w - 40))
        qx = left + (cell_w - qr.width) // 2
        page.paste(qr, (qx, top))
        cells.append(Cell(cam.id, url, page_no, (qx, top, qx + qr.width, top + qr.height)))
        y = top + qr.height + 8
        width = cell_w - 40
        lines = [(f"{cam.id}  ({cam.gate})", label_font, 40)]
        if cjk is not None:
            lines.append((cam.location.zh, small_font, 32))
        lines += [(cam.location.en, small_font, 32), (url, small_font, 32)]
        for text, font_, step in lines:
            draw.text((left + 20, y), _fit(draw, text, font_, width), fill=0, font=font_)
            y += step
        draw.rectangle((left + 4, top - 10, left + cell_w - 4, top + cell_h - 20), outline=160)

    files: list[Path] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".pdf":
        rgb = [p.convert("RGB") for p in pages]
        rgb[0].save(out, "PDF", resolution=DPI, save_all=True, append_images=rgb[1:])
        files.append(out)
    elif len(pages) == 1:
        pages[0].save(out, dpi=(DPI, DPI))
        files.append(out)
    else:
        for i, page in enumerate(pages, start=1):
            path = out.with_name(f"{out.stem}-{i}{out.suffix}")
            page.save(path, dpi=(DPI, DPI))
            files.append(path)
    return Sheet(files, cells, cjk is not None)
