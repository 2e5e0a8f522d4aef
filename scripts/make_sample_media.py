"""Write a small, realistic sample corpus (and the answers a search should find in it).

    python scripts/make_sample_media.py --out sample-media

Writes one file per supported document kind, deliberately bad inputs under ``bad/``, and
``expected.json``: example searches with the file, page and text that answer them, and the
terminal status (and failure reason) each file should reach. Output is byte-for-byte stable
across runs, so the demo and the end-to-end tests can rely on it.

One ``write_*`` function per media kind; ``main`` calls them all.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from fpdf import FPDF

# fpdf2 stamps the creation date into the file (and its /ID); a fixed one keeps the bytes stable.
CREATION_DATE = datetime(2024, 3, 1, 9, 0, 0, tzinfo=UTC)

HANDBOOK = "employee-handbook.pdf"
RUNBOOK = "platform-runbook.md"
FAQ = "product-faq.html"
MEETING_NOTES = "meeting-notes.txt"
BAD_EMPTY = "bad/empty.txt"
BAD_CORRUPT_PDF = "bad/corrupt.pdf"
BAD_FIRMWARE = "bad/firmware.bin"


@dataclass(frozen=True)
class ExpectedFile:
    """The terminal status one sample file should reach, and why it fails if it does."""

    path: str  # relative to the corpus folder, with "/" separators
    status: str  # "SUCCEEDED" or "FAILED"
    media_type: str | None
    error: str | None = None  # the Step Functions error name of the failure
    reason_contains: str | None = None
    pages: int | None = None


@dataclass(frozen=True)
class ExpectedQuery:
    """A question phrased unlike its answer, and where the answer is."""

    query: str
    expect_file: str
    expect_page: int | None
    expect_text_contains: str
    # Video and audio answers: the seconds the answering moment should overlap (None: any time).
    expect_start: float | None = None
    expect_end: float | None = None


# --- documents ---------------------------------------------------------------------------------

# One tuple per page: (heading, paragraphs). Each page holds facts found nowhere else.
HANDBOOK_PAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Welcome to Acme Robotics",
        (
            "This handbook describes how we work together at Acme Robotics. It applies to every "
            "employee in every office, and it is updated each January by the People team.",
            "Our core hours are 10:00 to 15:00 local time. Outside core hours you may arrange your "
            "day as you see fit, provided your team knows when to reach you.",
            "We expect everyone to treat colleagues, customers and partners with respect. "
            "Harassment or discrimination of any kind is not tolerated and can be reported "
            "confidentially to the People team or to any member of the leadership group.",
            "Questions about this handbook go to people@acme-robotics.example.",
        ),
    ),
    (
        "Time Off",
        (
            "Full-time employees receive 25 vacation days per calendar year. Part-time employees "
            "receive a share of that allowance in proportion to their contracted hours.",
            "Up to five unused vacation days may be carried over into the first quarter of the "
            "following year; any remaining days lapse on 31 March.",
            "Public holidays follow the calendar of the office you are contracted to and do not "
            "count against your vacation allowance.",
            "If you are ill, tell your manager before 10:00 on the first day of absence. A doctor's "
            "note is required from the fourth consecutive sick day onwards.",
            "Parents may take up to 16 weeks of paid parental leave within the first year after a birth or adoption.",
        ),
    ),
    (
        "Expenses and Travel",
        (
            "Expense reports must be submitted within 30 days of the purchase date, together with "
            "an itemised receipt for every line. Reports filed later than that are not reimbursed.",
            "Book all business travel through the company travel portal so that the travel desk can "
            "reach you in an emergency.",
            "Flights shorter than six hours are booked in economy class; longer flights may be "
            "booked in premium economy with the approval of a director.",
            "While travelling you may claim a daily meal allowance of 45 EUR. Alcohol is never reimbursed.",
        ),
    ),
    (
        "Remote Work and Equipment",
        (
            "Employees may work remotely up to three days per week with the approval of their "
            "manager. Team days on Tuesdays are spent in the office.",
            "Every new employee receives a laptop, which is refreshed every three years. Lost or "
            "stolen equipment must be reported to the IT service desk within 24 hours.",
            "A one-off home office stipend of 500 EUR covers a desk, a chair or a monitor.",
            "Company data stays on company devices: do not copy customer data to personal storage.",
        ),
    ),
)

RUNBOOK_TEXT = """\
# Platform Runbook

This runbook covers routine operations for the **orders** platform. Keep it next to the
on-call dashboard.

## Rotating the database credentials

The orders service connects to PostgreSQL with a generated user whose password is rotated
every 90 days, or at once if it may have leaked.

1. Announce the rotation in `#ops` and pause the nightly export job.
2. Run `opsctl db rotate-credentials --cluster orders-prod`. The tool creates a new login,
   stores it in the secrets manager under `orders/prod/db` and keeps the old login valid for
   one hour.
3. Restart the API pods with `kubectl rollout restart deployment/orders-api` so that they
   read the new secret.
4. Check the *connections by user* panel: once no session uses the old login, drop it with
   `opsctl db drop-login --cluster orders-prod --previous`.

```bash
opsctl db rotate-credentials --cluster orders-prod
kubectl rollout restart deployment/orders-api
```

## On-call escalation

Pages go to the primary on-call engineer first. If a page is not acknowledged within
15 minutes, it escalates automatically to the secondary on-call engineer; after 30 minutes
without acknowledgement the engineering manager is paged as well.

Severity 1 incidents (checkout down, data loss) also need an incident channel and a status
page update within the first 20 minutes.

## Restoring from a backup

Snapshots are taken every six hours and kept for 14 days. To restore, create a new cluster from
the snapshot, verify row counts against the last export, then switch the service's connection
string. Never restore over the live cluster.
"""

FAQ_HTML = """\
<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Acme HomeBot - Frequently Asked Questions</title>
  <style>body { font-family: sans-serif; } .answer { margin-left: 1em; }</style>
  <script>window.analytics = { page: "faq" };</script>
</head>
<body>
  <nav><a href="/">Home</a> | <a href="/shop">Shop</a> | <a href="/support">Support</a></nav>
  <main>
    <h1>HomeBot FAQ</h1>
    <p>Answers to the questions our support team hears most about the HomeBot cleaning robot.</p>

    <h2>What warranty comes with the HomeBot?</h2>
    <p class="answer">Every HomeBot is covered by a <strong>two-year limited warranty</strong>
    against manufacturing defects, starting on the day of delivery. The battery is covered for
    twelve months. Damage from water, drops or unauthorised repairs is not included.</p>

    <h2>Can I send my HomeBot back?</h2>
    <p class="answer">Yes. Unused products in their original packaging can be returned within
    45 days of delivery for a full refund. Start a return from your order page; we email you a
    prepaid shipping label.</p>

    <h2>How long does the battery last?</h2>
    <p class="answer">A full charge cleans for about 120 minutes on the standard setting, or 70
    minutes on the turbo setting. Charging from empty takes three hours.</p>

    <h2>Which countries do you ship to?</h2>
    <p class="answer">We ship to the EU, the United Kingdom, Norway and Switzerland. Orders placed
    before 14:00 on a working day leave our warehouse the same day.</p>
  </main>
  <footer><p>Acme Robotics, 2024</p></footer>
  <script>console.log("loaded");</script>
</body>
</html>
"""

MEETING_NOTES_TEXT = """\
Product sync - 12 March 2024
Attendees: Priya (product), Tom (firmware), Lena (marketing), Jonas (support)

1. Firmware certification
Tom reported that the radio certification lab found an issue with the 5 GHz power levels. The
fix is done, but the lab cannot retest before the end of September.

2. Launch date
Because of the certification delay, the team agreed to move the public launch of HomeBot from
1 October to 14 October. Pre-orders stay open in the meantime. Lena will update the press kit
and the retailer newsletter by Friday.

3. Support readiness
Jonas asked for the troubleshooting guide two weeks before launch. Priya will share the draft
next Wednesday.

Action items
- Tom: send the certification report to Priya.
- Lena: update launch date in press kit and newsletter.
- Jonas: schedule support training for the week of 30 September.
"""


def _handbook_pdf() -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_creation_date(CREATION_DATE)
    pdf.set_title("Acme Robotics Employee Handbook")
    pdf.set_author("Acme Robotics People Team")
    pdf.set_margins(20, 20, 20)
    for heading, paragraphs in HANDBOOK_PAGES:
        pdf.add_page()
        pdf.set_font("Helvetica", style="B", size=18)
        pdf.multi_cell(0, 10, heading)
        pdf.ln(4)
        pdf.set_font("Helvetica", size=11)
        for paragraph in paragraphs:
            pdf.multi_cell(0, 6, paragraph)
            pdf.ln(3)
    if pdf.page != len(HANDBOOK_PAGES):
        # An automatic page break would move facts off the page expected.json promises.
        raise RuntimeError(f"handbook overflowed to {pdf.page} pages; shorten a page's text")
    return bytes(pdf.output())


def write_documents(out_dir: Path) -> list[ExpectedFile]:
    """One document of each kind: a PDF handbook, a Markdown runbook, an HTML FAQ, text notes."""
    (out_dir / HANDBOOK).write_bytes(_handbook_pdf())
    (out_dir / RUNBOOK).write_text(RUNBOOK_TEXT, encoding="utf-8", newline="\n")
    (out_dir / FAQ).write_text(FAQ_HTML, encoding="utf-8", newline="\n")
    (out_dir / MEETING_NOTES).write_text(MEETING_NOTES_TEXT, encoding="utf-8", newline="\n")
    return [
        ExpectedFile(HANDBOOK, "SUCCEEDED", "document", pages=len(HANDBOOK_PAGES)),
        ExpectedFile(RUNBOOK, "SUCCEEDED", "document"),
        ExpectedFile(FAQ, "SUCCEEDED", "document"),
        ExpectedFile(MEETING_NOTES, "SUCCEEDED", "document"),
    ]


def document_queries() -> list[ExpectedQuery]:
    """Searches whose wording shares few words with the passage that answers them."""
    return [
        ExpectedQuery("How much paid leave do staff get each year?", HANDBOOK, 2, "25 vacation days"),
        ExpectedQuery("What is the deadline for getting money back for work purchases?", HANDBOOK, 3, "within 30 days"),
        ExpectedQuery("How do I change the password of the production database?", RUNBOOK, None, "rotate-credentials"),
        ExpectedQuery("Who is contacted when the first responder ignores an alert?", RUNBOOK, None, "15 minutes"),
        ExpectedQuery("How long is the robot guaranteed if it breaks?", FAQ, None, "two-year limited warranty"),
        ExpectedQuery("When does the device go on sale?", MEETING_NOTES, None, "14 October"),
    ]


# --- deliberately bad inputs -------------------------------------------------------------------


def _firmware_blob(size: int = 4096) -> bytes:
    # A made-up header and hash-chained bytes: stable, binary (NULs, controls), no known signature.
    blob = bytearray(b"ACMEFW\x00\x02")
    block = hashlib.sha256(b"medialens sample firmware").digest()
    while len(blob) < size:
        blob += block
        block = hashlib.sha256(block).digest()
    return bytes(blob[:size])


def write_bad_inputs(out_dir: Path) -> list[ExpectedFile]:
    """An empty file, a PDF cut short mid-upload, and a binary blob of no supported type."""
    bad = out_dir / "bad"
    bad.mkdir(parents=True, exist_ok=True)
    (bad / "empty.txt").write_bytes(b"")
    pdf = _handbook_pdf()
    # The first 40%: header and some page objects, but no cross-reference table or trailer.
    (bad / "corrupt.pdf").write_bytes(pdf[: len(pdf) * 2 // 5])
    (bad / "firmware.bin").write_bytes(_firmware_blob())
    return [
        ExpectedFile(BAD_EMPTY, "FAILED", None, "MediaLens.InvalidMedia", "empty file"),
        ExpectedFile(BAD_CORRUPT_PDF, "FAILED", "document", "MediaLens.InvalidMedia", "corrupt or truncated PDF"),
        ExpectedFile(BAD_FIRMWARE, "FAILED", "unknown", "MediaLens.UnsupportedMediaType", "unsupported media type"),
    ]


# --- expected answers --------------------------------------------------------------------------


def answers(query: dict[str, Any], hit_source: str) -> bool:
    """Whether a hit's source (an s3:// URI) is the file an expected query names, or one of its
    re-muxed twins: the sample video ships as MP4, MOV and MKV with the same streams."""
    expected = PurePosixPath(str(query["expect_file"])).with_suffix("")
    found = PurePosixPath(hit_source).with_suffix("")
    return found.as_posix().endswith("/" + expected.as_posix())


def write_expected(out_dir: Path, files: list[ExpectedFile], queries: list[ExpectedQuery]) -> Path:
    """``<corpus>.expected.json`` beside the corpus (so ingesting the folder ingests only media):
    {"queries": [...], "files": [...]}, sorted so the bytes are stable."""
    path = out_dir.with_name(f"{out_dir.name}.expected.json")
    payload = {
        "queries": [asdict(q) for q in queries],
        "files": [asdict(f) for f in sorted(files, key=lambda f: f.path)],
    }
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8", newline="\n")
    return path


def main(out_dir: Path, *, media: bool = True) -> Path:
    """Write the corpus into ``out_dir`` (created if needed); returns the expected answers' path.
    ``media=False`` writes the documents (and bad documents) only: quick, for document tests."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = write_documents(out_dir) + write_bad_inputs(out_dir)
    queries = document_queries()
    if media:
        import sample_audio  # siblings that import this module's dataclasses: imported late
        import sample_scans
        import sample_video

        # One copy of the video: its MOV/MKV twins (same streams) would only repeat its answers.
        files += sample_audio.write_audio(out_dir) + sample_video.main(out_dir, remuxed=False)
        files += sample_scans.write_scans(out_dir)  # read by OCR: the media extra's model
        queries += sample_audio.audio_queries() + sample_video.video_queries() + sample_scans.scan_queries()
    return write_expected(out_dir, files, queries)


def _cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("sample-media"), help="folder to write (default: %(default)s)")
    parser.add_argument("--documents-only", action="store_true", help="only the documents (no video, audio or images)")
    args = parser.parse_args(argv)
    expected = main(args.out, media=not args.documents_only)
    print(f"wrote sample media to {args.out} (answers in {expected.name})")
    return 0


if __name__ == "__main__":
    raise SystemExit(_cli())
