"""Heavy steps on a SageMaker asynchronous endpoint: the forwarder hands the heavy queue's
messages to it, as one request per batch.

The batch is written to ``s3://<artifacts>/async-inference/input/<id>.json`` as the body the
image's ``/invocations`` takes (``{"messages": [...]}``, ``medialens.worker.serve``), then
``InvokeEndpointAsync`` queues it. The endpoint answers each message's task token itself, exactly
as the ECS worker does, so the queue message is done once the endpoint has accepted it; a request
the endpoint cannot run ends with its tasks' heartbeat timeout, and the workflow's Retry sends
the step again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from medialens import aws
from medialens.adapters.storage.base import join_uri
from medialens.domain.steps import StepMessage
from medialens.errors import ConfigurationError
from medialens.services import Services

INPUT_PREFIX = "async-inference/input"


@dataclass(frozen=True, slots=True)
class Forwarded:
    inference_id: str
    input_uri: str
    output_uri: str | None
    messages: int


def forward(services: Services, messages: Sequence[StepMessage]) -> Forwarded:
    """Queues one batch of heavy step messages on the endpoint."""
    settings = services.settings
    if not settings.sagemaker_endpoint:
        raise ConfigurationError("MEDIALENS_SAGEMAKER_ENDPOINT is not set: no endpoint to forward heavy steps to")
    payload = {"messages": [message.model_dump(mode="json", by_alias=True) for message in messages]}
    request_id = uuid.uuid4().hex
    input_uri = join_uri(settings.artifacts_bucket, INPUT_PREFIX, f"{request_id}.json")
    services.blobs.put_text(input_uri, json.dumps(payload))
    response = aws.sagemaker_runtime(settings).invoke_endpoint_async(
        EndpointName=settings.sagemaker_endpoint,
        InputLocation=input_uri,
        ContentType="application/json",
        InferenceId=request_id,
    )
    return Forwarded(
        inference_id=str(response.get("InferenceId") or request_id),
        input_uri=input_uri,
        output_uri=response.get("OutputLocation"),
        messages=len(messages),
    )
