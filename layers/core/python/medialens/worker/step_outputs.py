"""Completed step outputs, kept so that an execution started again after a crash skips what its
steps already did: a crash late in a long video costs only the steps that had not finished.

An output is stored at ``derived/<asset_id>/steps/<execution>/<step>-<digest>.json``, the digest
being the SHA-256 of the step's validated input. The execution name carries the asset, the
pipeline version and the attempt (``ids.execution_name_for``), so a re-run (a new attempt, a
new pipeline version, new models) computes everything again, while the same execution resumed
finds the answers its steps gave. The outputs only point at artifacts that were written before
the step answered, so a reused answer is as good as a new one. They go with the asset's other
derived files when it is deleted or superseded.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, ValidationError

from medialens.domain.steps import StepCall
from medialens.observability import get_logger
from medialens.pipeline.catalog import StepSpec
from medialens.services import Services

logger = get_logger("medialens-tasks")


class StepOutputs:
    def __init__(self, services: Services) -> None:
        self.services = services

    def _uri(self, execution: str, spec: StepSpec[Any, Any], call: StepCall[Any]) -> str:
        digest = hashlib.sha256(call.input.model_dump_json().encode()).hexdigest()[:32]
        return self.services.artifact_uri(call.asset.asset_id, "steps", execution, f"{spec.name.value}-{digest}.json")

    def recall(self, execution: str | None, spec: StepSpec[Any, Any], call: StepCall[Any]) -> BaseModel | None:
        """The output this execution's step already gave for this input, if it did."""
        if execution is None:
            return None
        uri = self._uri(execution, spec, call)
        blobs = self.services.blobs
        if blobs.head(uri) is None:
            return None
        try:
            output: BaseModel = spec.output.model_validate_json(blobs.get_text(uri))
        except (ValidationError, OSError) as error:  # unreadable: computing it again is the answer
            logger.warning("kept step output unreadable", extra={"uri": uri, "error": str(error)})
            return None
        logger.info("step output reused", extra={"step": spec.name.value, "asset_id": call.asset.asset_id})
        return output

    def keep(self, execution: str | None, spec: StepSpec[Any, Any], call: StepCall[Any], output: BaseModel) -> None:
        if execution is not None:
            self.services.blobs.put_text(self._uri(execution, spec, call), output.model_dump_json())
