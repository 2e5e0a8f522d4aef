"""Embedding: passages → moments with vectors. Batches across messages (and assets): one model
call serves every message the heavy worker picked up together.

Every passage gets the multilingual vector; a passage in English (or of unknown language) also
gets the English-trained encoder's, which English questions are answered with too (see
``SearchService``)."""

from __future__ import annotations

from collections.abc import Sequence

from medialens.domain.moments import Moment, Passage
from medialens.domain.steps import EmbedInput, EmbedResult, StepCall, StepName
from medialens.ids import moment_id_for
from medialens.ml.language import identify_language
from medialens.pipeline.artifacts import artifact_uri, read_jsonl, write_jsonl
from medialens.pipeline.quality import record_embeddings
from medialens.services import Services


def embed_text(services: Services, calls: Sequence[StepCall[EmbedInput]]) -> list[EmbedResult | Exception]:
    """Embeds every call's passages in one batched model call; a call whose passages cannot be
    read fails alone."""
    loaded: list[list[Passage] | Exception] = []
    for call in calls:
        try:
            loaded.append(read_jsonl(services, call.input.batch.uri, Passage))
        except Exception as error:  # noqa: BLE001 - reported per message, the others go on
            loaded.append(error)
    every = [p for passages in loaded if not isinstance(passages, Exception) for p in passages]
    # Speech knows its language from the recogniser; text is identified here.
    languages = [p.language or identify_language(p.text).language for p in every]
    embedder, english = services.embedder, services.english_embedder
    vectors = iter(embedder.embed([p.text for p in every])) if every else iter(())
    in_english = [p.text for p, language in zip(every, languages, strict=True) if language in (None, "en")]
    english_vectors = iter(english.embed(in_english)) if english is not None and in_english else iter(())
    passage_languages = iter(languages)

    def english_vector(language: str | None) -> list[float] | None:
        if english is None or language not in (None, "en"):
            return None
        return [float(x) for x in next(english_vectors)]

    def versions(passage: Passage) -> dict[str, str]:
        made = {**passage.model_versions, "text_embedding": embedder.version}
        return made | ({"english_embedding": english.version} if english is not None else {})

    results: list[EmbedResult | Exception] = []
    for call, passages in zip(calls, loaded, strict=True):
        if isinstance(passages, Exception):
            results.append(passages)
            continue
        asset, batch = call.asset, call.input.batch
        moments = [
            Moment(
                # Where the passage sits and what it says, as extracted (text, modality, page or
                # times, section, confidence).
                **passage.model_dump(exclude={"index", "model_versions", "plays_in", "plays_as", "language"}),
                language=language,
                moment_id=moment_id_for(asset.asset_id, passage.modality.value, passage.locator),
                asset_id=asset.asset_id,
                source=passage.plays_in or asset.source.uri,
                media_type=passage.plays_as or call.input.media_type,
                vector=[float(x) for x in next(vectors)],
                english_vector=english_vector(language),
                model_versions=versions(passage),
                pipeline_version=asset.pipeline_version,
            )
            for passage, language in zip(passages, [next(passage_languages) for _ in passages], strict=True)
        ]
        # Named after the step that wrote the passages: each analysis output numbers its own batches.
        name = f"{batch.source}/moments-{batch.index:04d}.jsonl"
        uri = artifact_uri(services, asset.asset_id, StepName.EMBED_TEXT, embedder.version, name)
        write_jsonl(services, uri, moments)
        record_embeddings(services, asset.asset_id, embedder.version, [m.vector for m in moments if m.vector])
        results.append(EmbedResult(uri=uri, count=len(moments), model=embedder.version))
    return results
