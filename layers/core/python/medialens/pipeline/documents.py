"""Document branch: extract the text layer with its pages and headings, read scanned pages with
OCR, and chunk both into passage batches.

ExtractDocument (light) reads the text layer and lists the pages whose layer cannot stand for the
page (``media.documents.pages``); when there are any, a Map of RecognizePages (heavy, batched
across messages with the same OCR model the video branch uses) reads them, and BuildPageText
(light) turns what it read into passages that keep their page numbers. The text layer and the
scanned pages are two outputs of the document; their moments say which is which: those read by
OCR carry the OCR model in ``model_versions`` and its confidence.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from medialens.domain.assets import MediaType, SourceObject
from medialens.domain.moments import Passage
from medialens.domain.steps import (
    AssetRef,
    BuildPageTextInput,
    ExtractDocumentInput,
    ExtractResult,
    PageBatchRef,
    ProbeResult,
    RecognizePagesInput,
    RecognizePagesResult,
    SegmentsResult,
    StepCall,
    StepName,
)
from medialens.errors import InvalidMediaError
from medialens.media.detection import DetectedType, extensions_for
from medialens.media.documents.chunking import chunk_passages
from medialens.media.documents.extract import ExtractedDocument, TextSection, decode_text
from medialens.media.documents.extract import extract_document as extract_text
from medialens.media.documents.pages import PageText, render_pages
from medialens.media.documents.subtitles import SUBTITLE_MIMES, SubtitleTrack, parse_cues, subtitle_passages
from medialens.media.ocr_lines import page_text
from medialens.pipeline.artifacts import artifact_uri, read_jsonl, write_jsonl, write_passage_batches
from medialens.pipeline.quality import record_ocr_quality
from medialens.services import Services

MAX_DOCUMENT_BYTES = 256 * 1024 * 1024
# Rendered pages handed to the OCR model at once: memory holds this many page pictures (~11 MB
# each at 200 dpi), whichever documents they come from.
PAGES_PER_OCR_CALL = 4


def _within_size(probe: ProbeResult) -> None:
    if probe.size > MAX_DOCUMENT_BYTES:
        raise InvalidMediaError(
            f"document is {probe.size / 2**20:.0f} MiB; the limit is {MAX_DOCUMENT_BYTES // 2**20} MiB"
        )


def extract_document(services: Services, asset: AssetRef, request: ExtractDocumentInput) -> ExtractResult:
    probe = request.probe
    _within_size(probe)
    data = services.blobs.get_bytes(asset.source.uri)
    if probe.mime_type in SUBTITLE_MIMES:
        return _extract_subtitles(services, asset, data)
    detected = DetectedType(media_type=probe.media_type, mime_type=probe.mime_type, extension=probe.extension)
    document = extract_text(data, detected)
    settings = services.settings
    scanned = document.ocr_pages
    if len(scanned) > settings.document_ocr_max_pages:
        raise InvalidMediaError(
            f"the document has {len(scanned):,} scanned pages without usable text; the limit is "
            f"{settings.document_ocr_max_pages:,} pages read by OCR per document: split it into parts and upload those"
        )
    passages = chunk_passages(document, words=settings.passage_words, overlap=settings.passage_overlap_words)
    if not passages and not scanned:
        raise InvalidMediaError("the document contains no text to index")

    version = asset.pipeline_version
    document_uri = artifact_uri(services, asset.asset_id, StepName.EXTRACT_DOCUMENT, version, "document.json")
    services.blobs.put_text(document_uri, document.model_dump_json())
    batches = write_passage_batches(services, asset.asset_id, StepName.EXTRACT_DOCUMENT, version, passages)
    services.registry.add_artifacts(asset.asset_id, {"document": document_uri})
    size = settings.document_ocr_pages_per_batch
    page_batches = [
        PageBatchRef(index=number, pages=scanned[start : start + size])
        for number, start in enumerate(range(0, len(scanned), size))
    ]
    return ExtractResult(
        batches=batches,
        passages=len(passages),
        pages=document.pages,
        characters=document.characters,
        ocr_pages=len(scanned),
        page_batches=page_batches,
    )


def _extract_subtitles(services: Services, asset: AssetRef, data: bytes) -> ExtractResult:
    """Cues joined into timed SUBTITLE passages; when a video or recording with the same base name
    sits beside the file (``talk.mp4`` for ``talk.srt`` or ``talk.en.srt``), the passages play in
    it, so a hit opens that media at the cue."""
    cues, skipped = parse_cues(decode_text(data))
    settings = services.settings
    passages = subtitle_passages(
        cues, min_s=settings.speech_passage_min_seconds, max_s=settings.speech_passage_max_seconds
    )
    media = _media_beside(services, asset.source)
    if media is not None:
        passages = [p.model_copy(update={"plays_in": media[0], "plays_as": media[1]}) for p in passages]
    version = asset.pipeline_version
    step = StepName.EXTRACT_DOCUMENT
    cues_uri = artifact_uri(services, asset.asset_id, step, version, "cues.json")
    track = SubtitleTrack(plays_in=media[0] if media else None, skipped_cues=skipped, cues=cues)
    services.blobs.put_text(cues_uri, track.model_dump_json(), "application/json")
    services.registry.add_artifacts(asset.asset_id, {"cues": cues_uri})
    batches = write_passage_batches(services, asset.asset_id, step, version, passages)
    return ExtractResult(batches=batches, passages=len(passages), characters=sum(len(c.text) for c in cues))


def extract_office(services: Services, asset: AssetRef, request: ExtractDocumentInput) -> ExtractResult:
    """A Word or PowerPoint file (on the heavy worker): its text with headings, slides as pages,
    speaker notes and tables, and what OCR reads in its pictures, as passages."""
    # Office libraries and the OCR model (the media extra) load here, not with the catalogue.
    from medialens.media.documents.office import extract_office as read_office
    from medialens.ml.ocr import get_text_recognizer

    probe = request.probe
    _within_size(probe)
    office = read_office(services.blobs.get_bytes(asset.source.uri), probe.mime_type)
    settings = services.settings
    passages = (
        chunk_passages(office.text, words=settings.passage_words, overlap=settings.passage_overlap_words)
        if office.text is not None
        else []
    )
    recognizer = get_text_recognizer(settings)
    unreadable = 0
    for picture in office.pictures:
        try:
            (lines,) = recognizer.recognize([picture.data])
        except InvalidMediaError:
            unreadable += 1  # a damaged or unsupported picture costs its own text only
            continue
        read = page_text(lines, min_confidence=settings.ocr_min_confidence)
        if read is None:
            continue
        text, confidence = read
        said = ExtractedDocument.of([TextSection(text=text, page=picture.page, heading="picture")])
        for passage in chunk_passages(
            said, words=settings.passage_words, overlap=settings.passage_overlap_words, first_index=len(passages)
        ):
            update = {"confidence": round(confidence, 4), "model_versions": {"ocr": recognizer.version}}
            passages.append(passage.model_copy(update=update))
    if not passages:
        raise InvalidMediaError(
            f"no text found: the file has no text of its own and OCR read nothing in its {len(office.pictures)} "
            f"picture(s){f' ({unreadable} unreadable)' if unreadable else ''}"
        )
    step, version = StepName.EXTRACT_OFFICE, asset.pipeline_version
    document = office.text or ExtractedDocument.of([])
    uri = artifact_uri(services, asset.asset_id, step, version, "document.json")
    services.blobs.put_text(uri, document.model_dump_json())
    services.registry.add_artifacts(asset.asset_id, {"document": uri})
    batches = write_passage_batches(services, asset.asset_id, step, version, passages)
    return ExtractResult(
        batches=batches, passages=len(passages), pages=document.pages, characters=sum(len(p.text) for p in passages)
    )


# A language tag between the base name and the extension: talk.en.srt, talk.pt-BR.vtt.
_LANGUAGE_TAG = re.compile(r"\.[a-z]{2,3}(?:[-_][A-Za-z]{2,4})?$")


def _media_beside(services: Services, source: SourceObject) -> tuple[str, MediaType] | None:
    """The URI and media type of the video or recording the subtitle file belongs to, if present."""
    stem = posixpath.splitext(source.key)[0]
    stems = [stem, _LANGUAGE_TAG.sub("", stem)] if _LANGUAGE_TAG.search(stem) else [stem]
    for base in stems:
        for media_type in (MediaType.VIDEO, MediaType.AUDIO):
            for extension in extensions_for(media_type):
                uri = f"s3://{source.bucket}/{base}.{extension}"
                if services.blobs.head(uri) is not None:
                    return uri, media_type
    return None


def recognize_pages(
    services: Services, calls: Sequence[StepCall[RecognizePagesInput]]
) -> list[RecognizePagesResult | Exception]:
    """Renders every call's pages and reads them with one OCR model, a few pages per model call
    whichever documents they come from; a document that cannot be rendered fails alone."""
    from medialens.ml.ocr import get_text_recognizer  # the model (media extra) loads here: see catalog.py

    settings = services.settings
    recognizer = get_text_recognizer(settings)
    read: list[list[PageText]] = [[] for _ in calls]
    failed: dict[int, Exception] = {}
    pending: list[tuple[int, int, npt.NDArray[np.uint8]]] = []  # (call, page, BGR pixels)

    def flush() -> None:
        if not pending:
            return
        pictures = [pixels for _, _, pixels in pending]
        for (number, page, pixels), lines in zip(pending, recognizer.recognize_bgr(pictures), strict=True):
            height, width = pixels.shape[:2]
            read[number].append(PageText(page=page, width=width, height=height, lines=lines))
        pending.clear()

    for number, call in enumerate(calls):
        try:
            data = services.blobs.get_bytes(call.asset.source.uri)
            for page, pixels in render_pages(
                data,
                call.input.batch.pages,
                dpi=settings.document_ocr_dpi,
                max_side_px=settings.document_ocr_max_side_px,
            ):
                pending.append((number, page, pixels))
                if len(pending) >= PAGES_PER_OCR_CALL:
                    flush()
        except Exception as error:  # noqa: BLE001 - this document fails; the others go on
            failed[number] = error
            pending[:] = [item for item in pending if item[0] != number]
    flush()

    results: list[RecognizePagesResult | Exception] = []
    for number, call in enumerate(calls):
        if number in failed:
            results.append(failed[number])
            continue
        batch = call.input.batch
        name = f"pages-{batch.index:04d}.jsonl"
        uri = artifact_uri(services, call.asset.asset_id, StepName.RECOGNIZE_PAGES, recognizer.version, name)
        pages: list[PageText] = sorted(read[number], key=lambda text: text.page)
        write_jsonl(services, uri, pages)
        results.append(
            RecognizePagesResult(index=batch.index, uri=uri, count=len(read[number]), model=recognizer.version)
        )
    return results


def build_page_text(services: Services, asset: AssetRef, request: BuildPageTextInput) -> SegmentsResult:
    """What OCR read, page by page in reading order, as passages that keep their page numbers."""
    pages = sorted(
        (text for result in request.pages for text in read_jsonl(services, result.uri, PageText)),
        key=lambda text: text.page,
    )
    model = request.pages[0].model if request.pages else asset.pipeline_version
    sections: list[TextSection] = []
    confidence: dict[int, float] = {}
    for page in pages:
        read = page_text(page.lines, min_confidence=services.settings.ocr_min_confidence)
        if read is not None:
            sections.append(TextSection(text=read[0], page=page.page))
            confidence[page.page] = read[1]
    document = ExtractedDocument.of(sections, pages=request.extract.pages)
    settings = services.settings
    passages: list[Passage] = [
        passage.model_copy(
            update={"confidence": round(confidence[passage.page or 0], 4), "model_versions": {"ocr": model}}
        )
        for passage in chunk_passages(
            document,
            words=settings.passage_words,
            overlap=settings.passage_overlap_words,
            first_index=request.extract.passages,  # after the text layer's passages
        )
    ]
    if not passages and not request.extract.passages:
        raise InvalidMediaError(
            f"no text found: the document has no text layer and OCR read nothing on its "
            f"{request.extract.ocr_pages} scanned page(s); check the scan (resolution, contrast) and upload it again"
        )
    step = StepName.BUILD_PAGE_TEXT
    uri = artifact_uri(services, asset.asset_id, step, model, "page_text.json")
    services.blobs.put_text(uri, document.model_dump_json())
    services.registry.add_artifacts(asset.asset_id, {"page_text": uri})
    record_ocr_quality(services, asset.asset_id, StepName.RECOGNIZE_PAGES, model, (page.lines for page in pages))
    batches = write_passage_batches(services, asset.asset_id, step, model, passages)
    return SegmentsResult(batches=batches, passages=len(passages))
