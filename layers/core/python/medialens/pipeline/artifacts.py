"""Helpers shared by steps: artifact locations and JSON-lines artifacts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from pydantic import BaseModel

from medialens.domain.moments import Passage
from medialens.domain.steps import PassageBatchRef, SegmentsResult
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


def with_passed_on(
    passed_on: Sequence[SegmentsResult], batches: list[PassageBatchRef], passages: int
) -> SegmentsResult:
    """A branch's last step answers for the branch: the outputs its earlier steps passed on, then
    its own (a Parallel branch has one output, and the state machine cannot concatenate lists)."""
    return SegmentsResult(
        batches=[batch for output in passed_on for batch in output.batches] + batches,
        passages=sum(output.passages for output in passed_on) + passages,
    )
