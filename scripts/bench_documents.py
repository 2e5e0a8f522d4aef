"""Document pages per second on this machine: text-layer pages against scanned pages read by OCR.

* text layer: a generated PDF with a text layer on every page, through the extraction the light
  worker runs (text, page classification, no OCR);
* scanned: pages drawn as a scanner delivers them (``sample_scans``), through the heavy worker's
  path: render at the configured resolution, then the OCR model, one page per model call and
  ``--group`` pages per call; word recall against the drawn text says what the speed buys.

Example::

    .venv/bin/python scripts/bench_documents.py --pages 24 --json .bench/documents.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_embeddings
import sample_scans
from medialens.domain.assets import MediaType
from medialens.media.detection import DetectedType
from medialens.media.documents.extract import extract_document
from medialens.media.documents.pages import render_pages
from medialens.ml.ocr import get_text_recognizer
from medialens.settings import get_settings

console = Console()
PDF = DetectedType(media_type=MediaType.DOCUMENT, mime_type="application/pdf", extension="pdf")


def _page_lines(rng: random.Random, count: int) -> list[str]:
    """Lines of about 50 characters, as a letter page at 12 pt holds them."""
    words = " ".join(bench_embeddings.make_sentences(count * 2, rng.randrange(1 << 30))).split()
    lines, line = [], ""
    for word in words:
        if len(line) + len(word) > 50:
            lines.append(line)
            line = ""
        line = f"{line} {word}".strip()
        if len(lines) == count:
            break
    return lines


def _recall(truth: list[str], read: list[str]) -> float:
    expected, got = Counter(" ".join(truth).lower().split()), Counter(" ".join(read).lower().split())
    return sum(min(n, got[w]) for w, n in expected.items()) / max(sum(expected.values()), 1)


def bench(pages: int, group: int, seed: int) -> dict[str, Any]:
    settings = get_settings()
    rng = random.Random(seed)
    texts = [_page_lines(rng, 30) for _ in range(pages)]

    typed = sample_scans.text_pdf([" ".join(lines) for lines in texts])
    started = time.perf_counter()
    document = extract_document(typed, PDF)
    text_seconds = time.perf_counter() - started
    assert not document.ocr_pages and len(document.sections) == pages

    scanned = sample_scans.image_pdf([sample_scans.scanned_page(lines) for lines in texts])
    assert extract_document(scanned, PDF).ocr_pages == list(range(1, pages + 1))
    recognizer = get_text_recognizer(settings)
    recognizer.load()
    numbers = list(range(1, pages + 1))

    def read(per_call: int) -> tuple[float, float, float]:
        render_s = ocr_s = 0.0
        lines_read: dict[int, list[str]] = {}
        pending: list[tuple[int, Any]] = []
        clock = time.perf_counter()
        for number, pixels in render_pages(
            scanned, numbers, dpi=settings.document_ocr_dpi, max_side_px=settings.document_ocr_max_side_px
        ):
            render_s += time.perf_counter() - clock
            pending.append((number, pixels))
            if len(pending) == per_call or number == numbers[-1]:
                clock = time.perf_counter()
                for (page, _), lines in zip(pending, recognizer.recognize_bgr([p for _, p in pending]), strict=True):
                    lines_read[page] = [line.text for line in lines]
                ocr_s += time.perf_counter() - clock
                pending.clear()
            clock = time.perf_counter()
        recall = sum(_recall(texts[n - 1], lines_read[n]) for n in numbers) / pages
        return render_s, ocr_s, recall

    single = read(1)
    grouped = read(group)
    return {
        "pages": pages,
        "dpi": settings.document_ocr_dpi,
        "ocr_model": recognizer.version,
        "text_layer_pages_per_s": pages / text_seconds,
        "scanned_single": {
            "render_s": single[0],
            "ocr_s": single[1],
            "pages_per_s": pages / sum(single[:2]),
            "word_recall": single[2],
        },
        f"scanned_grouped_{group}": {
            "render_s": grouped[0],
            "ocr_s": grouped[1],
            "pages_per_s": pages / sum(grouped[:2]),
            "word_recall": grouped[2],
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pages", type=int, default=24)
    parser.add_argument("--group", type=int, default=4, help="pages per OCR call in the grouped run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    result = bench(args.pages, args.group, args.seed)
    result["machine"] = {"python": platform.python_version(), "arch": platform.machine(), "cpus": os.cpu_count()}
    table = Table(title=f"{args.pages} letter pages, OCR at {result['dpi']} dpi with {result['ocr_model']}")
    for column in ("path", "pages/s", "render s", "OCR s", "word recall"):
        table.add_column(column)
    table.add_row("text layer (extract + classify)", f"{result['text_layer_pages_per_s']:.1f}", "-", "-", "-")
    for name in ("scanned_single", f"scanned_grouped_{args.group}"):
        row = result[name]
        label = (
            "scanned, 1 page per OCR call" if name == "scanned_single" else f"scanned, {args.group} pages per OCR call"
        )
        table.add_row(
            label,
            f"{row['pages_per_s']:.2f}",
            f"{row['render_s']:.1f}",
            f"{row['ocr_s']:.1f}",
            f"{row['word_recall']:.3f}",
        )
    console.print(table)
    console.print(f"reproduce: python {shlex.join(['scripts/bench_documents.py', *(argv or sys.argv[1:])])}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
