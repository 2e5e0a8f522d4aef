"""Where the branches of a video or audio file meet: their passage batches, renumbered so every
batch (and its moments artifact) has its own index."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from medialens.domain.messages import AssetRef, PassageBatchRef, SegmentsResult
from medialens.services import Services


class MergeInput(BaseModel):
    branches: list[SegmentsResult]


def merge_segments(services: Services, asset: AssetRef, raw_input: dict[str, Any]) -> SegmentsResult:
    branches = MergeInput.model_validate(raw_input).branches
    batches = [
        PassageBatchRef(index=index, uri=batch.uri, count=batch.count)
        for index, batch in enumerate(b for branch in branches for b in branch.batches)
    ]
    return SegmentsResult(batches=batches, passages=sum(branch.passages for branch in branches))
