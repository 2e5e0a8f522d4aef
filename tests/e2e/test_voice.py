"""Voice end to end: a document uploaded with narration asked for comes back spoken, with speech
marks and moments that play "from here"; a spoken question finds it through the API and the CLI;
the served API speaks, streaming sentence by sentence."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect, sync_playwright

from medialens.domain.assets import AssetStatus, UploadOptions
from medialens.domain.search import SearchQuery
from medialens.domain.speech import MarkType, SpeechMark
from medialens.local.server import LocalServer
from medialens.local.uploads import plan_uploads, upload

from .conftest import fast_settings
from .test_web_page import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLI = str(Path(sys.executable).with_name("medialens"))
POLICY = """# Travel policy

## Booking

Employees book every flight through the travel desk at least two weeks ahead.
Economy class is the rule for flights shorter than six hours.

## Allowances

The daily meal allowance abroad is forty euros. Hotel rooms are paid up to one hundred and twenty euros a night.
"""
QUESTION = "what is the daily meal allowance abroad"


def _espeak_wav(text: str, path: Path) -> Path:
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
    return path


def _post(server: LocalServer, path: str, body: bytes, content_type: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    connection.request("POST", path, body=body, headers={"Content-Type": content_type})
    return connection.getresponse()


def test_a_narrated_document_is_spoken_searched_by_voice_and_played_from_the_hit(tmp_path: Path) -> None:
    document = tmp_path / "travel-policy.md"
    document.write_text(POLICY)
    plain = tmp_path / "travel-policy-unnarrated.md"  # another key: the same key would be a new revision
    plain.write_text(POLICY)
    server = LocalServer(fast_settings(), port=0).start()
    try:
        runtime = server.runtime
        assert runtime is not None and runtime.services is not None, server.pipeline_note
        services = runtime.services
        narrated_plan, _ = plan_uploads([document], runtime.settings.drop_prefix)
        (narrated,) = upload(services, narrated_plan, options=UploadOptions(narrate=True))
        plain_plan, _ = plan_uploads([plain], runtime.settings.drop_prefix)
        (unnarrated,) = upload(services, plain_plan)
        assets = {a.asset_id: a for a in runtime.wait_for([narrated.asset_id, unnarrated.asset_id], timeout_s=300)}
        asset = assets[narrated.asset_id]
        assert asset.status is AssetStatus.SUCCEEDED, asset.error_reason
        assert asset.source.options.narrate and not assets[unnarrated.asset_id].source.options.narrate
        assert "narration" not in assets[unnarrated.asset_id].artifacts

        # --- the narration: audio, speech marks over the reading text, a quality check ----------
        info = asset.metadata["narration"]
        assert info["voice"] == "piper-en-us-joe-medium@1+fp32" and not info["fallback_voice"]
        assert info["language"] == "en" and info["word_error_rate"] is not None and info["word_error_rate"] <= 0.15
        assert asset.warnings == []
        text = services.blobs.get_text(asset.artifacts["narration_text"])
        assert text.startswith("Booking\nEmployees book every flight") and "\n\nAllowances\n" in text
        marks = [
            SpeechMark.model_validate_json(line)
            for line in services.blobs.get_text(asset.artifacts["speech_marks"]).splitlines()
        ]
        words = [m for m in marks if m.type is MarkType.WORD]
        assert [w.value for w in words] == text.split()
        assert all(text[m.start : m.end] == m.value for m in marks)
        times = [t for w in words for t in (w.time, w.end_time)]
        assert times == sorted(times) and abs(times[-1] / 1000 - info["duration_s"]) < 1.0
        assert services.blobs.read_range(asset.artifacts["narration"], 0, 3) in (b"ID3", b"\xff\xfb\x90"[:3])

        # --- a spoken question finds the passage, which plays from where it is said ----------------
        question = _espeak_wav(QUESTION, tmp_path / "question.wav").read_bytes()
        response = _post(server, "/api/search/voice?k=3", question, "audio/wav")
        page = json.loads(response.read())
        assert response.status == 200, page
        assert "meal allowance" in page["heard"]["text"].lower() and page["heard"]["language"] == "en"
        top = page["hits"][0]
        assert top["asset_id"] in (narrated.asset_id, unnarrated.asset_id) and "forty euros" in top["text"]
        narrated_hit = next(h for h in page["hits"] if h["asset_id"] == narrated.asset_id)
        assert narrated_hit["narration_url"] and narrated_hit["narration_start"] is not None
        said_at = next(w.time for w in words if w.value == "meal") / 1000
        assert narrated_hit["narration_start"] <= said_at <= narrated_hit["narration_end"]
        plain_hit = next(h for h in page["hits"] if h["asset_id"] == unnarrated.asset_id)
        assert plain_hit["narration_url"] is None

        refused = _post(server, "/api/search/voice", b"not audio at all", "text/plain")
        assert refused.status == 415 and json.loads(refused.read())["error"]["code"] == "unsupported_media_type"
        garbage = _post(server, "/api/search/voice", b"RIFF\x00\x00\x00\x00WAVEjunk" * 10, "audio/wav")
        assert garbage.status == 400 and json.loads(garbage.read())["error"]["code"] == "invalid_audio"

        # --- the API speaks, sentence by sentence -------------------------------------------------
        started = time.perf_counter()
        spoken = _post(
            server,
            "/api/speech",
            json.dumps({"text": "The meal allowance is forty euros. " * 6, "format": "mp3"}).encode(),
            "application/json",
        )
        assert spoken.status == 200 and spoken.getheader("Content-Type") == "audio/mpeg"
        assert spoken.getheader("Transfer-Encoding") == "chunked"
        first = spoken.read1(65536)
        first_s = time.perf_counter() - started
        rest = spoken.read()
        total_s = time.perf_counter() - started
        assert first and rest and first_s < total_s / 2  # the first sentence came before the rest was made
        bad = _post(server, "/api/speech", json.dumps({"text": " "}).encode(), "application/json")
        assert bad.status == 400 and json.loads(bad.read())["error"]["code"] in ("invalid_request", "cannot_speak")

        # --- the CLI asks out loud too -----------------------------------------------------------
        cli = subprocess.run(
            [CLI, "search", "--voice", str(tmp_path / "question.wav"), "-k", "2", "--json"],
            capture_output=True,
            text=True,
            env=dict(os.environ),
            timeout=300,
            check=False,
        )
        assert cli.returncode == 0, cli.stderr
        answer = json.loads(cli.stdout)
        assert "meal allowance" in answer["heard"]["text"].lower() and "forty euros" in answer["hits"][0]["text"]

        # --- the page: ask with the microphone, then listen from the passage ---------------------
        _ask_and_listen_in_the_browser(server, tmp_path / "question.wav", narrated.asset_id)
    finally:
        server.stop()


def _ask_and_listen_in_the_browser(server: LocalServer, question: Path, narrated_asset: str) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is missing: scripts/install_system_deps.sh installs it")
    microphone = [
        "--use-fake-ui-for-media-stream",  # grant the microphone without a prompt
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={question}",
        "--autoplay-policy=no-user-gesture-required",
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *microphone]
        )
        try:
            page = browser.new_page(viewport=VIEWPORT)
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(server.url)
            ask = page.get_by_role("button", name="Ask out loud")
            ask.focus()
            page.keyboard.press("Enter")  # keyboard only, like the rest of the page
            expect(page.locator("#ask")).to_have_attribute("aria-pressed", "true")
            expect(page.locator("#search-status")).to_contain_text("Listening")
            page.wait_for_timeout(3500)  # the fake microphone plays the question (in a loop)
            page.keyboard.press("Enter")
            expect(page.locator("#search-status")).to_contain_text("Heard", timeout=60_000)
            assert "meal allowance" in page.locator("#q").input_value().lower()
            expect(page.locator(".hit-open", has_text="forty euros").first).to_be_visible()
            page.locator(f'.hit-open[data-asset-id="{narrated_asset}"]').first.click()
            audio = page.locator("#narration")
            expect(audio).to_be_attached()
            start = float(audio.get_attribute("data-start") or "nan")
            wait_until(page, "document.querySelector('#narration').currentTime > 0")
            expect(page.locator(".spoken .word").first).to_be_attached(timeout=10_000)
            assert "meal" in page.locator(".spoken").inner_text()
            wait_until(page, "document.querySelector('.spoken .word.speaking') !== null", timeout_s=20)
            position = page.evaluate("document.querySelector('#narration').currentTime")
            assert start <= position < start + 20
            assert problems == []
        finally:
            browser.close()


def test_the_same_file_uploaded_again_with_narration_becomes_the_current_revision(
    tmp_path: Path, start_runtime: Any
) -> None:
    document = tmp_path / "meal-policy.md"
    document.write_text("# Meals\n\nThe daily meal allowance abroad is forty euros.\n")
    runtime = start_runtime()
    services = runtime.services
    plan, _ = plan_uploads([document], runtime.settings.drop_prefix)
    (plain,) = upload(services, plan)
    (first,) = runtime.wait_for([plain.asset_id], timeout_s=120)
    assert first.status is AssetStatus.SUCCEEDED and "narration" not in first.artifacts

    (narrated,) = upload(services, plan, options=UploadOptions(narrate=True))  # same key, same bytes
    assert narrated.asset_id != plain.asset_id and narrated.info.etag == plain.info.etag
    (second,) = runtime.wait_for([narrated.asset_id], timeout_s=180)
    assert second.status is AssetStatus.SUCCEEDED and "narration" in second.artifacts
    # Once the narrated upload succeeded, the plain analysis of the same key is superseded.
    deadline = time.monotonic() + 30
    while services.registry.get(plain.asset_id) is not None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert services.registry.get(plain.asset_id) is None
    hits = services.search.search(SearchQuery(text="meal allowance abroad", k=5)).hits
    assert {hit.asset_id for hit in hits} == {narrated.asset_id}
    assert hits[0].narration_uri is not None and hits[0].narration_start is not None
