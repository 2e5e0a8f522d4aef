"""Embedding: passages → moments with vectors. Batches across messages (and assets): one model
call serves every message the heavy worker picked up together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError

from medialens.domain.messages import AssetRef, EmbedInput, EmbedResult, StepMessage
from medialens.domain.moments import Moment, Passage
from medialens.ids import moment_id_for
from medialens.pipeline.artifacts import artifact_uri, read_jsonl, write_jsonl
from medialens.services import Services


@dataclass(frozen=True, slots=True)
class EmbedRequest:
    asset: AssetRef
    input: EmbedInput


def embed_text(services: Services, messages: Sequence[StepMessage]) -> list[BaseModel | Exception]:
    """The heavy worker's batch entry: every message's passages in one model call."""
    requests: list[EmbedRequest | Exception] = []
    for message in messages:
        try:
            requests.append(EmbedRequest(asset=message.asset, input=EmbedInput.model_validate(message.input)))
        except ValidationError as error:
            requests.append(error)
    embedded = iter(embed_requests(services, [r for r in requests if isinstance(r, EmbedRequest)]))
    return [r if isinstance(r, Exception) else next(embedded) for r in requests]


def embed_requests(services: Services, requests: Sequence[EmbedRequest]) -> list[EmbedResult | Exception]:
    """Embeds every request's passages in one batched model call; a request whose passages cannot
    be read fails alone."""
    loaded: list[tuple[EmbedRequest, list[Passage]] | Exception] = []
    for request in requests:
        try:
            loaded.append((request, read_jsonl(services, request.input.batch.uri, Passage)))
        except Exception as error:  # noqa: BLE001 - reported per message, the others go on
            loaded.append(error)
    texts = [p.text for item in loaded if not isinstance(item, Exception) for p in item[1]]
    embedder = services.embedder
    vectors = embedder.embed(texts) if texts else None

    results: list[EmbedResult | Exception] = []
    offset = 0
    for item in loaded:
        if isinstance(item, Exception):
            results.append(item)
            continue
        request, passages = item
        asset, source = request.asset, request.asset.source
        moments = []
        for passage in passages:
            assert vectors is not None
            vector = vectors[offset]
            offset += 1
            moments.append(
                Moment(
                    moment_id=moment_id_for(asset.asset_id, passage.modality.value, passage.locator),
                    asset_id=asset.asset_id,
                    source=source.uri,
                    media_type=request.input.media_type,
                    modality=passage.modality,
                    text=passage.text,
                    start=passage.start,
                    end=passage.end,
                    page=passage.page,
                    section=passage.section,
                    vector=[float(x) for x in vector],
                    confidence=passage.confidence,
                    model_versions={**passage.model_versions, "text_embedding": embedder.version},
                    pipeline_version=asset.pipeline_version,
                )
            )
        name = f"moments-{request.input.batch.index:04d}.jsonl"
        uri = artifact_uri(services, asset.asset_id, "embed_text", embedder.version, name)
        write_jsonl(services, uri, moments)
        results.append(EmbedResult(uri=uri, count=len(moments), model=embedder.version))
    return results
