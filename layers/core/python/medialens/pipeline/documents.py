"""Document branch: extract text with its pages and headings, chunk it into passage batches."""

from __future__ import annotations

from medialens.domain.steps import AssetRef, ExtractDocumentInput, ExtractResult, StepName
from medialens.errors import InvalidMediaError
from medialens.media.detection import DetectedType
from medialens.media.documents.chunking import chunk_passages
from medialens.media.documents.extract import extract_document as extract_text
from medialens.pipeline.artifacts import artifact_uri, write_passage_batches
from medialens.services import Services

MAX_DOCUMENT_BYTES = 256 * 1024 * 1024


def extract_document(services: Services, asset: AssetRef, request: ExtractDocumentInput) -> ExtractResult:
    probe = request.probe
    if probe.size > MAX_DOCUMENT_BYTES:
        raise InvalidMediaError(
            f"document is {probe.size / 2**20:.0f} MiB; the limit is {MAX_DOCUMENT_BYTES // 2**20} MiB"
        )
    data = services.blobs.get_bytes(asset.source.uri)
    detected = DetectedType(media_type=probe.media_type, mime_type=probe.mime_type, extension=probe.extension)
    document = extract_text(data, detected)
    settings = services.settings
    passages = chunk_passages(document, words=settings.passage_words, overlap=settings.passage_overlap_words)
    if not passages:
        raise InvalidMediaError("the document contains no text to index")

    version = asset.pipeline_version
    document_uri = artifact_uri(services, asset.asset_id, StepName.EXTRACT_DOCUMENT, version, "document.json")
    services.blobs.put_text(document_uri, document.model_dump_json())
    batches = write_passage_batches(services, asset.asset_id, StepName.EXTRACT_DOCUMENT, version, passages)
    services.registry.add_artifacts(asset.asset_id, {"document": document_uri})
    return ExtractResult(batches=batches, passages=len(passages), pages=document.pages, characters=document.characters)
