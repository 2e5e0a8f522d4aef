"""Helpers shared by steps: artifact locations and JSON-lines artifacts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from pydantic import BaseModel

from medialens.domain.moments import Passage
from medialens.domain.steps import PassageBatchRef
from medialens.services import Services

Model = TypeVar("Model", bound=BaseModel)


def artifact_uri(services: Services, asset_id: str, step: str, version: str, name: str) -> str:
    """``derived/<asset>/<step>/<version>/<name>``: a re-run of the same step and model version
    overwrites its own outputs and nothing else."""
    return services.artifact_uri(asset_id, step, version, name)


def write_jsonl(services: Services, uri: str, items: Iterable[BaseModel]) -> None:
    body = "".join(item.model_dump_json() + "\n" for item in items)
    services.blobs.put_text(uri, body, content_type="application/x-ndjson")


def write_passage_batches(
    services: Services, asset_id: str, step: str, version: str, passages: Sequence[Passage]
) -> list[PassageBatchRef]:
    """Passages as JSON-lines batches of ``embed_batch_passages``: the embedding Map's items, named
    after the step that wrote them."""
    size = services.settings.embed_batch_passages
    batches = []
    for index, start in enumerate(range(0, len(passages), size)):
        chunk = passages[start : start + size]
        uri = artifact_uri(services, asset_id, step, version, f"passages-{index:04d}.jsonl")
        write_jsonl(services, uri, chunk)
        batches.append(PassageBatchRef(source=step, index=index, uri=uri, count=len(chunk)))
    return batches


def read_jsonl(services: Services, uri: str, model: type[Model]) -> list[Model]:
    return [model.model_validate_json(line) for line in services.blobs.get_text(uri).splitlines() if line]
