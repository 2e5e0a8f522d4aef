"""The web page in headless Chromium against ``medialens serve`` running the whole pipeline in
its own process: ingest the sample corpus, search by keyboard, open a PDF at the answer's page
and a recording at the moment's second, see every asset with its status and failure reason,
re-run one and delete another. Screenshots go to test-artifacts/ (git-ignored).

The recording is seeded the way the audio branch leaves one (registry row, source object,
moments with times and real embeddings), so the player is tested whatever branches exist.
"""

from __future__ import annotations

import json
import math
import struct
import subprocess
import time
import urllib.parse
import urllib.request
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Response, expect, sync_playwright

from medialens.domain.assets import Asset, AssetStatus, MediaType, SourceObject
from medialens.domain.moments import Modality, Moment
from medialens.ids import asset_id_for, execution_name_for, moment_id_for
from medialens.local.server import LocalServer
from medialens.services import Services

from .conftest import fast_settings, ingest_and_wait

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1280, "height": 800}

SPEECH = [
    (0.0, 6.0, "Good morning everyone and welcome to the weekly standup."),
    (6.0, 12.5, "The quarterly launch review moves to Thursday afternoon."),
    (12.5, 19.0, "Please send the budget numbers to finance by Friday."),
]


def write_tone(path: Path, seconds: float = 20.0, rate: int = 16_000) -> None:
    """A mono 16-bit WAV: long enough to seek into, small enough to serve instantly."""
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / rate))) for n in range(int(seconds * rate))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)


def seed_recording(services: Services, folder: Path) -> Asset:
    """A transcribed recording, outside the drop prefix so no branch re-analyses it."""
    wav = folder / "standup.wav"
    write_tone(wav)
    settings = services.settings
    info = services.blobs.put_file(f"s3://{settings.artifacts_bucket}/fixtures/standup.wav", wav, "audio/wav")
    asset_id = asset_id_for(info.bucket, info.key, info.etag)
    asset = Asset(
        asset_id=asset_id,
        source=SourceObject(bucket=info.bucket, key=info.key, etag=info.etag, size=info.size),
        pipeline_version=settings.pipeline_version,
        execution_name=execution_name_for(asset_id, settings.pipeline_version),
    )
    services.registry.create_if_absent(asset)
    vectors = services.embedder.embed([text for _, _, text in SPEECH])
    moments = [
        Moment(
            moment_id=moment_id_for(asset_id, "speech", f"t{start:.3f}"),
            asset_id=asset_id,
            source=info.uri,
            media_type=MediaType.AUDIO,
            modality=Modality.SPEECH,
            text=text,
            start=start,
            end=end,
            vector=[float(x) for x in vector],
            model_versions={"text_embedding": services.embedder.version},
            pipeline_version=settings.pipeline_version,
        )
        for (start, end, text), vector in zip(SPEECH, vectors, strict=True)
    ]
    services.index.upsert(moments)

    def succeeded(current: Asset) -> None:
        current.status, current.media_type, current.moment_count = AssetStatus.SUCCEEDED, MediaType.AUDIO, 3

    return services.registry.mutate(asset_id, succeeded)


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def api_json(server: LocalServer, path: str) -> Any:
    with urllib.request.urlopen(server.url + "api/" + path, timeout=30) as response:
        return json.loads(response.read())


def wait_until(page: Page, function: str, timeout_s: float = 30.0) -> None:
    """Polls a JavaScript function until it returns true. (Playwright's wait_for_function
    evaluates strings with eval, which the page's Content-Security-Policy rightly refuses.)"""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(function):
        assert time.monotonic() < deadline, f"timed out waiting for {function}"
        page.wait_for_timeout(100)


def search(page: Page, query: str, media_type: str = "") -> None:
    page.select_option("#media-type", media_type)
    page.fill("#q", query)
    page.focus("#q")
    page.keyboard.press("Enter")
    expect(page.locator("#search-status")).to_contain_text(query, timeout=30_000)


def contrast(page: Page, selector: str) -> float:
    """WCAG contrast of an element's text against the first opaque background behind it."""
    ratio: float = page.eval_on_selector(
        selector,
        """element => {
            const rgb = value => value.match(/[\\d.]+/g).map(Number);
            const luminance = ([r, g, b]) => {
                const channel = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
                return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
            };
            let node = element, background = null;
            while (node && !background) {
                const color = rgb(getComputedStyle(node).backgroundColor);
                if (color.length < 4 || color[3] > 0.99) background = color.slice(0, 3);
                if (color.length === 4 && color[3] === 0) background = null;
                node = node.parentElement;
            }
            const fg = luminance(rgb(getComputedStyle(element).color));
            const bg = luminance(background || [255, 255, 255]);
            return (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
        }""",
    )
    return ratio


def unnamed_controls(page: Page) -> list[str]:
    """Controls a screen reader would announce without a name."""
    unnamed: list[str] = page.evaluate(
        """() => [...document.querySelectorAll('input, select, button, iframe, audio, video')]
            .filter(e => !((e.labels && e.labels.length) || e.getAttribute('aria-label')
                           || e.getAttribute('title') || e.textContent.trim()))
            .map(e => e.outerHTML.slice(0, 80))"""
    )
    return unnamed


def test_search_open_and_manage_assets_in_the_browser(
    corpus: tuple[Path, dict[str, Any]], browser: Browser, tmp_path: Path
) -> None:
    folder, expected = corpus
    ARTIFACTS.mkdir(exist_ok=True)
    server = LocalServer(fast_settings(), port=0).start()
    try:
        runtime = server.runtime
        assert runtime is not None and runtime.services is not None, server.pipeline_note
        _, assets = ingest_and_wait(runtime, [folder])
        assert all(asset.status.terminal for asset in assets.values())
        recording = seed_recording(runtime.services, tmp_path)

        page = browser.new_page(viewport=VIEWPORT)
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        foreign: list[str] = []  # network requests to anywhere but this server

        def note_request(url: str) -> None:
            if url.startswith(("http:", "https:", "ws:", "wss:")) and not url.startswith(server.url):
                foreign.append(url)

        page.on("request", lambda request: note_request(request.url))
        files: list[Response] = []
        page.on("response", lambda response: files.append(response) if "/files/" in response.url else None)
        page.goto(server.url)

        # --- every asset with its status, and the reason of each failure ---------------------
        expect(page.locator("#assets tbody tr")).to_have_count(len(expected["files"]) + 1)
        expect(page.locator("#health")).to_contain_text("API ready", timeout=30_000)
        for item in expected["files"]:
            name = item["path"].rsplit("/", 1)[-1]
            row = page.locator("#assets tbody tr", has=page.locator(".file-cell", has_text=name))
            assert row.get_attribute("data-status") == item["status"], name
            if item["status"] == "FAILED":
                assert item["reason_contains"] in row.locator(".reason").inner_text()

        # --- search from the keyboard; open the PDF at the answer's page ---------------------
        question = next(q for q in expected["queries"] if q["expect_file"].endswith(".pdf"))
        search(page, question["query"])
        # Tab order: query, mode, media type, Search, Ask out loud, then the results.
        for _ in range(5):
            page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement === document.querySelector('.hit-open')")
        answer = (
            page.locator(".hit-open")
            .filter(has_text=question["expect_file"])
            .filter(has_text=f"page {question['expect_page']}")
        )
        assert answer.count() >= 1
        first = answer.first
        assert first.locator(".snippet mark").count() >= 1  # the query's words, highlighted
        assert first.locator(".badge").inner_text().lower() == "document"
        assert "score" in first.locator(".score").inner_text()
        first.focus()
        with page.expect_response(lambda r: r.url.split("#")[0].endswith(question["expect_file"])) as pdf:
            page.keyboard.press("Enter")
        assert pdf.value.status in (200, 206) and pdf.value.headers["content-type"] == "application/pdf"
        frame_src = page.get_attribute("#doc-frame", "src")
        assert frame_src is not None and frame_src.endswith(f"{question['expect_file']}#page={question['expect_page']}")
        assert first.get_attribute("aria-current") == "true"
        page.wait_for_timeout(1500)  # let the PDF viewer draw the page for the screenshot
        page.screenshot(path=str(ARTIFACTS / "web-page.png"))

        # --- the recording starts at the moment's second -----------------------------------
        search(page, "when is the launch review", media_type="audio")
        hit = page.locator(".hit-open").first
        assert "standup.wav" in hit.inner_text() and "0:06.0\u20130:12.5" in hit.inner_text()  # en dash
        assert [m.lower() for m in hit.locator("mark").all_inner_texts()] == ["launch", "review"]
        hit.click()
        wait_until(
            page,
            "() => { const p = document.querySelector('#player');"
            " return !!p && p.readyState >= 1 && Math.abs(p.currentTime - 6.0) < 0.05; }",
        )
        assert page.eval_on_selector("#player", "p => p.tagName") == "AUDIO"
        assert any(r.url.endswith("/fixtures/standup.wav") and r.status == 206 for r in files), "no byte ranges"
        page.screenshot(path=str(ARTIFACTS / "web-page-audio.png"))

        # --- accessibility at 1280x800 --------------------------------------------------------
        assert unnamed_controls(page) == []
        for selector in (
            "body",
            "label",
            ".status",
            ".snippet",
            "mark",
            ".badge",
            "button.primary",
            ".where",
            ".score",
        ):
            assert contrast(page, selector) >= 4.5, selector
        for selector in (".status-succeeded", ".status-failed", ".reason"):
            assert contrast(page, f"#assets {selector}") >= 4.5, selector
        assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT["width"]
        # The dark theme follows the system and keeps the same contrast.
        page.emulate_media(color_scheme="dark")
        assert page.evaluate("getComputedStyle(document.documentElement).backgroundColor") == "rgb(13, 17, 23)"
        for selector in ("label", ".status", ".snippet", "mark", ".badge", "button.primary", ".where", ".score"):
            assert contrast(page, selector) >= 4.5, f"dark: {selector}"
        for selector in (".status-succeeded", ".status-failed", ".reason"):
            assert contrast(page, f"#assets {selector}") >= 4.5, f"dark: {selector}"
        page.screenshot(path=str(ARTIFACTS / "web-page-dark.png"))
        page.emulate_media(color_scheme="light")

        # --- re-run an asset from the page -----------------------------------------------------
        notes = next(a for a in assets.values() if a.source.key.endswith("meeting-notes.txt"))
        row = page.locator(f"#assets tr[data-asset-id='{notes.asset_id}']")
        row.get_by_role("button", name="Reprocess meeting-notes.txt").click()
        expect(page.locator("#assets-status")).to_contain_text("Reprocessing meeting-notes.txt")
        # The table was reloaded after the request: the asset is queued again, and its row polls.
        assert row.get_attribute("data-status") in ("QUEUED", "RUNNING", "SUCCEEDED")
        expect(row).to_have_attribute("data-status", "SUCCEEDED", timeout=120_000)
        detail = api_json(server, f"assets/{notes.asset_id}")
        assert detail["execution_name"] == execution_name_for(notes.asset_id, notes.pipeline_version, attempt=1)
        assert detail["moment_count"] > 0 and "reprocess" in [event["kind"] for event in detail["events"]]

        # --- delete an asset from the page -----------------------------------------------------
        faq = next(a for a in assets.values() if a.source.key.endswith("product-faq.html"))
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Delete product-faq.html").click()
        expect(page.locator(f"#assets tr[data-asset-id='{faq.asset_id}']")).to_have_count(0)
        expect(page.locator("#assets-status")).to_contain_text("Deleted product-faq.html")
        search(page, "How long is the robot guaranteed if it breaks?")
        assert "product-faq.html" not in page.inner_text("#results")
        assert runtime.services.index.count(faq.asset_id) == 0
        assert recording.asset_id in {row["asset_id"] for row in api_json(server, "assets")["assets"]}

        page.screenshot(path=str(ARTIFACTS / "web-page-full.png"), full_page=True)

        # --- upload two files from the page: progress, then analysed like any other upload ------
        uploads = [tmp_path / "visitor-policy.txt", tmp_path / "launch-briefing.wav"]
        uploads[0].write_text("Visitors sign in at the front desk and wear a badge at all times.\n")
        spoken = "The warehouse robot ships in October. Pilot customers in Gothenburg receive it first."
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(uploads[1]), spoken], check=True)
        with wave.open(str(uploads[1])) as made:  # two seconds of silence first: the speech starts later
            params, frames = made.getparams(), made.readframes(made.getnframes())
        with wave.open(str(uploads[1]), "wb") as out:
            out.setparams(params)
            out.writeframes(b"\x00" * (2 * params.framerate * params.sampwidth) + frames)
        page.set_input_files("#upload-files", [str(path) for path in uploads])
        for path in uploads:
            item = page.locator(f".upload[data-file='{path.name}']")
            expect(item).to_have_attribute("data-state", "uploaded", timeout=30_000)
            assert item.locator("progress").get_attribute("value") == "100"
            row = page.locator("#assets tbody tr", has=page.locator(".file-cell", has_text=path.name))
            expect(row).to_have_attribute("data-status", "SUCCEEDED", timeout=180_000)
        search(page, "where do visitors sign in")
        assert "visitor-policy.txt" in page.locator("#results .hit-open").first.inner_text()
        page.screenshot(path=str(ARTIFACTS / "web-page-uploads.png"))

        # --- the asset view: click a transcript word, the player plays from it -------------------
        briefing = page.locator("#assets tbody tr", has=page.locator(".file-cell", has_text="launch-briefing.wav"))
        briefing.locator(".file-cell a").click()
        page.wait_for_url("**/assets/*")
        expect(page.locator("#transcript .word").first).to_be_visible(timeout=30_000)
        expect(page.locator("#asset-status")).to_contain_text("SUCCEEDED")
        word = page.locator("#transcript .word").nth(3)
        second = float(word.get_attribute("data-start") or "nan")
        assert second > 0.5
        word.click()
        wait_until(
            page,
            "() => { const p = document.querySelector('#player');"
            f" return !!p && p.readyState >= 1 && Math.abs(p.currentTime - {second}) < 0.5; }}",
        )
        assert "current" in (page.locator("#transcript .word.current").first.get_attribute("class") or "")
        lanes = page.locator("#timeline .lane[role='group']").evaluate_all("nodes => nodes.map(n => n.ariaLabel)")
        assert lanes[:2] == ["Speech", "Languages"], lanes
        facts = page.inner_text("#asset-facts")
        assert "SUCCEEDED" in facts and "Language" in facts
        assert page.locator("#asset-timings tbody tr").count() >= 3
        assert page.locator("#asset-models li", has_text="speech:").count() == 1
        assert page.locator("#asset-events li", has_text="succeeded").count() >= 1
        assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT["width"]
        assert unnamed_controls(page) == []
        page.screenshot(path=str(ARTIFACTS / "web-asset-view.png"), full_page=True)
        seen = (".segment-time", ".word", ".lane-name", ".tick", ".hint", ".facts dt", ".facts dd", ".events")
        for scheme in ("dark", "light"):
            page.emulate_media(color_scheme=scheme)
            for selector in seen:
                assert contrast(page, selector) >= 4.5, f"{scheme}: {selector}"
        # Keyboard only: Tab reaches a segment's time button, Enter plays from there.
        page.focus("#transcript .segment-time")
        page.keyboard.press("Enter")
        segment = float(page.get_attribute("#transcript .segment", "data-start") or "nan")
        wait_until(page, f"() => Math.abs(document.querySelector('#player').currentTime - {segment}) < 0.5")

        # --- a hit links to the asset view at its moment ------------------------------------------
        page.goto(server.url)
        search(page, "which customers receive the robot first", media_type="audio")
        link = page.locator(".hit", has_text="launch-briefing.wav").locator("a.hit-asset").first
        href = link.get_attribute("href") or ""
        moment = float(urllib.parse.parse_qs(urllib.parse.urlsplit(href).query)["t"][0])
        assert href.startswith("assets/") and moment > 1.5
        link.click()
        wait_until(
            page,
            "() => { const p = document.querySelector('#player');"
            f" return !!p && p.readyState >= 1 && Math.abs(p.currentTime - {moment}) < 0.05; }}",
        )

        # --- a search shared as a link runs when opened; the address follows the search --------
        question = next(q for q in expected["queries"] if q["expect_file"].endswith(".pdf"))
        shared = f"{server.url}?{urllib.parse.urlencode({'q': question['query'], 'media_type': 'document'})}"
        page.goto(shared)
        expect(page.locator("#results .hit-open").first).to_be_visible(timeout=30_000)
        assert page.input_value("#q") == question["query"] and page.input_value("#media-type") == "document"
        assert question["expect_file"].rsplit("/", 1)[-1] in page.locator("#results").inner_text()
        search(page, "How long is the robot guaranteed if it breaks?")
        assert "q=How+long+is+the+robot" in page.url

        # --- the API describes itself: its document and Swagger UI, served from here -------------
        served = api_json(server, "openapi.json")
        assert served == json.loads((REPO_ROOT / "docs" / "openapi.json").read_text())
        page.goto(server.url + "api/docs")
        expect(page.locator(".opblock").first).to_be_visible(timeout=30_000)
        # Swagger UI lists an operation under each of its tags.
        listed = sum(len(op.get("tags") or [""]) for ops in served["paths"].values() for op in ops.values())
        assert page.locator(".opblock").count() == listed
        expect(page.locator(".servers select option").first).to_have_attribute("value", ".")
        page.screenshot(path=str(ARTIFACTS / "api-docs.png"), full_page=False)
        # --- the Operations view: the report for a window, drawn by the server ------------------
        page.goto(server.url)
        page.get_by_role("link", name="Operations").click()
        page.wait_for_url("**/operations")
        expect(page.locator("#operations-status")).to_contain_text("assets", timeout=60_000)
        report = page.frame_locator("#report")
        expect(report.locator("h2", has_text="Latency per stage")).to_be_visible(timeout=60_000)
        assert report.locator("svg").count() >= 3
        stages = (
            report.locator("h2", has_text="Latency per stage").locator("xpath=following-sibling::table[1]").inner_text()
        )
        assert "transcribe_chunk" in stages and "embed_text" in stages
        expect(report.locator("h2", has_text="Cost")).to_be_visible()
        api_routes = report.locator("h2", has_text="API").locator("xpath=following-sibling::table[1]").inner_text()
        assert "/search" in api_routes and "/assets" in api_routes  # this page's own requests, per route
        page.select_option("#window", "1")
        expect(page.locator("#report")).to_have_attribute("src", "operations/report.html?since_hours=1")
        expect(report.locator("h1")).to_have_text("medialens operations: the last hour", timeout=60_000)
        assert unnamed_controls(page) == []
        page.screenshot(path=str(ARTIFACTS / "web-operations.png"), full_page=True)
        assert foreign == [], foreign  # no CDN, fonts or analytics: only this server
        assert problems == [], problems
    finally:
        server.stop()
