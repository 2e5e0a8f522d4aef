"""Word and PowerPoint files through the real pipeline (the heavy worker reads them): slides are
pages, pictures are read by OCR, and a zip of junk named .docx fails with what is missing."""

from __future__ import annotations

import io
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from medialens.domain.assets import AssetStatus
from medialens.domain.search import SearchFilters, SearchQuery
from medialens.local.runtime import LocalRuntime

from .conftest import REPO_ROOT, assets_by_file_name, fast_settings, ingest_and_wait

sys.path.insert(0, str(REPO_ROOT / "tests" / "integration"))

from test_office_documents import powerpoint_file, word_file

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_office_files_are_searchable_by_slide_and_picture(
    start_runtime: Callable[..., LocalRuntime], tmp_path: Path
) -> None:
    (tmp_path / "review.pptx").write_bytes(powerpoint_file())
    (tmp_path / "handbook.docx").write_bytes(word_file())
    junk = io.BytesIO()
    with zipfile.ZipFile(junk, "w") as archive:
        archive.writestr("readme.txt", "not a document")
    (tmp_path / "contract.docx").write_bytes(junk.getvalue())
    runtime = start_runtime(fast_settings(visibility_timeout_s=60, max_receive_count=3))
    uploaded, assets = ingest_and_wait(runtime, [tmp_path], timeout_s=300)
    by_name = assets_by_file_name(uploaded, assets)
    assert runtime.services is not None
    search = runtime.services.search

    deck = by_name["review.pptx"]
    assert deck.status is AssetStatus.SUCCEEDED, deck.error_reason
    only = SearchFilters(asset_ids=[deck.asset_id])
    notes = search.search(SearchQuery(text="opening of the Bergen office", k=1, filters=only)).hits[0]
    assert notes.page == 1 and notes.section == "Quarterly review"
    picture = search.search(SearchQuery(text="roadmap 2025", k=1, filters=only)).hits[0]
    assert picture.page == 3 and "ROADMAP" in picture.text and picture.model_versions.get("ocr")

    handbook = by_name["handbook.docx"]
    assert handbook.status is AssetStatus.SUCCEEDED, handbook.error_reason
    hits = search.search(
        SearchQuery(text="where are forklifts charged", k=2, filters=SearchFilters(asset_ids=[handbook.asset_id]))
    ).hits
    assert hits[0].section == "Charging" and "bay 4" in hits[0].text

    broken = by_name["contract.docx"]
    assert broken.status is AssetStatus.FAILED and broken.error_code == "MediaLens.InvalidMedia"
    assert "not a Word file: the archive has no word/document.xml" in (broken.error_reason or "")
