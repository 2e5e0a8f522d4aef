"""Scanned paperwork for the sample corpus and the tests: PDFs whose pages are pictures of text.

    python scripts/sample_scans.py --out sample-media

A scan here is made the way a scanner makes one: the text is drawn into a greyscale picture at
200 dpi, slightly blurred and skewed, and the picture becomes a PDF page with no text layer. The
signed contract mixes such pages with a page that has a text layer, and stores one scanned page
sideways with a /Rotate entry (as scanners do with landscape feeds), so a reader must turn it.

Output is byte-for-byte stable across runs.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import re
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pypdfium2 as pdfium
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from make_sample_media import ExpectedFile, ExpectedQuery

CONTRACT = "scans/signed-service-agreement.pdf"
DPI = 200
LETTER_IN = (8.5, 11.0)
CREATION_DATE = datetime(2024, 3, 1, 9, 0, 0, tzinfo=UTC)
_PDF_ID = re.compile(rb"/ID\[<[0-9A-F]+><[0-9A-F]+>\]")
_PDF_CREATED = re.compile(rb"/CreationDate\(D:\d{14}\+00'00'\)")

# Page 1 and page 3 are scanned (page 3 stored sideways); page 2 has a text layer.
CONTRACT_PAGE_1 = (
    "SERVICE AGREEMENT",
    "",
    "This agreement is made between Acme Robotics AB",
    "and Nordlys Logistics AS for the maintenance of",
    "the warehouse robot fleet at the Oslo depot.",
    "",
    "Either party may terminate this agreement by giving",
    "ninety days written notice to the other party.",
)
CONTRACT_PAGE_2 = (
    "Schedule A: Fees. The monthly service fee is 4,800 EUR per depot, invoiced on the first working "
    "day of each month and payable within 20 days."
)
CONTRACT_PAGE_3 = (
    "LIABILITY",
    "",
    "The supplier's total liability under this agreement",
    "is limited to the fees paid in the twelve months",
    "before the event that gave rise to the claim.",
    "",
    "Signed in Oslo on 3 June 2024.",
)


def font_path(family: str = "DejaVu Serif") -> str:
    found = subprocess.run(["fc-match", "-f", "%{file}", family], check=True, capture_output=True, text=True)
    return found.stdout.strip()


def scanned_page(lines: Sequence[str], *, points: int = 12, dpi: int = DPI, sideways: bool = False) -> Image.Image:
    """A letter-size greyscale picture of ``lines``, as a flatbed scanner would deliver it;
    ``sideways`` turns it a quarter to the left (the page's /Rotate 90 turns it back)."""
    width, height = round(LETTER_IN[0] * dpi), round(LETTER_IN[1] * dpi)
    page = Image.new("L", (width, height), 243)
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(font_path(), round(points * dpi / 72))
    y = dpi
    for line in lines:
        if line:
            draw.text((dpi, y), line, font=font, fill=24)
        y += round(points * 1.7 * dpi / 72)
    page = page.filter(ImageFilter.GaussianBlur(0.7)).rotate(0.6, fillcolor=243, resample=Image.Resampling.BICUBIC)
    return page.rotate(90, expand=True) if sideways else page


def image_pdf(pictures: Sequence[Image.Image], dpi: int = DPI) -> bytes:
    """Pictures as PDF pages with no text layer (Pillow embeds each as a JPEG)."""
    out = io.BytesIO()
    first, *rest = pictures
    first.save(
        out,
        format="PDF",
        save_all=True,
        append_images=rest,
        resolution=float(dpi),
        creationDate=CREATION_DATE.timetuple(),
        modDate=CREATION_DATE.timetuple(),
        quality=85,
    )
    return out.getvalue()


def text_pdf(paragraphs: Sequence[str]) -> bytes:
    """Letter pages with a text layer, one per paragraph."""
    pdf = FPDF(format="Letter")
    pdf.set_creation_date(CREATION_DATE)
    pdf.set_font("Helvetica", size=12)
    for paragraph in paragraphs:
        pdf.add_page()
        pdf.multi_cell(0, 7, paragraph)
    return bytes(pdf.output())


def assemble(parts: Sequence[tuple[bytes, int, int]]) -> bytes:
    """One PDF from (source PDF, its page index, /Rotate in degrees) in order."""
    target = pdfium.PdfDocument.new()
    sources = {}
    for data, index, rotation in parts:
        source = sources.setdefault(data, pdfium.PdfDocument(data))
        target.import_pages(source, pages=[index])
        if rotation:
            target[len(target) - 1].set_rotation(rotation)
    out = io.BytesIO()
    target.save(out)
    for source in sources.values():
        source.close()
    target.close()
    # PDFium stamps the time and a random file /ID: a fixed time and an /ID derived from the content
    # (each the same length, so the cross-reference offsets hold) keep the bytes stable.
    stamp = CREATION_DATE.strftime("(D:%Y%m%d%H%M%S+00'00')").encode()
    data = _PDF_CREATED.sub(b"/CreationDate" + stamp, out.getvalue())
    digest = hashlib.md5(_PDF_ID.sub(b"", data), usedforsecurity=False).hexdigest().upper().encode()
    return _PDF_ID.sub(b"/ID[<" + digest + b"><" + digest + b">]", data)


def contract_pdf() -> bytes:
    scans = image_pdf([scanned_page(CONTRACT_PAGE_1), scanned_page(CONTRACT_PAGE_3, sideways=True)])
    typed = text_pdf([CONTRACT_PAGE_2])
    return assemble([(scans, 0, 0), (typed, 0, 0), (scans, 1, 90)])


def write_scans(out_dir: Path) -> list[ExpectedFile]:
    path = out_dir / CONTRACT
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(contract_pdf())
    return [ExpectedFile(CONTRACT, "SUCCEEDED", "document", pages=3)]


def scan_queries() -> list[ExpectedQuery]:
    """Questions about what only the scanned pages say (their words differ from the answer's)."""
    return [
        ExpectedQuery("How much warning is needed to end the maintenance contract?", CONTRACT, 1, "ninety days"),
        ExpectedQuery("What caps the supplier's damages?", CONTRACT, 3, "twelve months"),
    ]


def _cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("sample-media"))
    args = parser.parse_args()
    write_scans(args.out)
    print(f"wrote {args.out / CONTRACT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_cli())
