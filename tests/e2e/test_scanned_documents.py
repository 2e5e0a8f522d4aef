"""Scanned paperwork through the real pipeline: pages without a usable text layer are read with
OCR on the heavy worker, keep their page numbers and say they were read by OCR; the text layer of
the other pages is used as is; scans with nothing readable, or too many of them, fail with why."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import sample_scans  # scripts/, put on sys.path by tests/e2e/conftest.py
from medialens.domain.assets import AssetStatus
from medialens.domain.search import SearchFilters, SearchMode, SearchQuery
from medialens.local.runtime import LocalRuntime

from .conftest import assets_by_file_name, fast_settings, ingest_and_wait

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _settings(**overrides: object) -> object:
    # Light steps run longer than fast_settings' 2 s visibility once OCR models are warm elsewhere.
    return fast_settings(visibility_timeout_s=60, max_receive_count=3, **overrides)


def test_scanned_pages_are_found_at_their_page_and_say_they_were_read(
    start_runtime: Callable[..., LocalRuntime], tmp_path: Path
) -> None:
    contract = tmp_path / "signed-agreement.pdf"
    contract.write_bytes(sample_scans.contract_pdf())
    runtime = start_runtime(_settings())
    uploaded, assets = ingest_and_wait(runtime, [contract], timeout_s=300)
    asset = assets[uploaded[0].asset_id]
    assert asset.status is AssetStatus.SUCCEEDED, asset.error_reason
    assert "page_text" in asset.artifacts and "document" in asset.artifacts
    assert runtime.services is not None
    search = runtime.services.search

    for query in sample_scans.scan_queries():
        hits = search.search(SearchQuery(text=query.query, k=5, filters=SearchFilters(asset_ids=[asset.asset_id]))).hits
        found = [h for h in hits if query.expect_text_contains in h.text]
        assert found and found[0].page == query.expect_page, (query.query, [(h.page, h.text[:60]) for h in hits])
        # Read by OCR: the model and its confidence are on the moment.
        assert found[0].model_versions.get("ocr", "").startswith("rapidocr")
        assert found[0].confidence is not None and found[0].confidence > 0.8

    typed = search.search(SearchQuery(text="monthly service fee", mode=SearchMode.KEYWORD, k=3)).hits
    assert typed and typed[0].page == 2 and "ocr" not in typed[0].model_versions  # the text layer, as is
    listed = runtime.services.index.asset_moments(asset.asset_id)
    assert [m.page for m in listed] == sorted(m.page or 0 for m in listed) and {m.page for m in listed} == {1, 2, 3}


def test_scans_with_nothing_to_read_or_too_many_pages_fail_with_the_reason(
    start_runtime: Callable[..., LocalRuntime], tmp_path: Path
) -> None:
    empty_scan = tmp_path / "blank-scan.pdf"
    empty_scan.write_bytes(sample_scans.image_pdf([sample_scans.scanned_page(["", "   "])]))
    thick = tmp_path / "three-scanned-pages.pdf"
    page = sample_scans.scanned_page(["Quarterly maintenance report"])
    thick.write_bytes(sample_scans.image_pdf([page, page, page]))
    runtime = start_runtime(_settings(document_ocr_max_pages=2))
    uploaded, assets = ingest_and_wait(runtime, [empty_scan, thick], timeout_s=300)
    by_name = assets_by_file_name(uploaded, assets)

    blank = by_name["blank-scan.pdf"]
    assert blank.status is AssetStatus.FAILED and blank.error_code == "MediaLens.InvalidMedia"
    assert "OCR read nothing on its 1 scanned page(s)" in (blank.error_reason or "")
    too_many = by_name["three-scanned-pages.pdf"]
    assert too_many.status is AssetStatus.FAILED
    assert "3 scanned pages without usable text; the limit is 2 pages read by OCR" in (too_many.error_reason or "")
