"""The heavy-worker image's SageMaker contract: /ping and /invocations, over real HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from medialens.domain.assets import Asset, SourceObject
from medialens.domain.moments import Moment, Passage
from medialens.pipeline.artifacts import read_jsonl, write_jsonl
from medialens.services import Services
from medialens.settings import Settings
from medialens.worker.serve import make_server

pytestmark = pytest.mark.integration


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[str, Services]]:
    services = Services(settings)
    server = make_server(services, host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", services
    server.shutdown()


def _embed_message(services: Services) -> dict[str, Any]:
    uri = "s3://medialens-artifacts/derived/a1/extract_document/1/passages-0000.jsonl"
    write_jsonl(services, uri, [Passage(index=0, text="Employees get 25 vacation days.", page=2)])
    source = SourceObject(bucket="medialens-drop", key="incoming/h.pdf", etag="e", size=10)
    return {
        "step": "embed_text",
        "asset": {"asset_id": "a1", "source": source.model_dump(), "pipeline_version": "1"},
        "input": {
            "batch": {"source": "extract_document", "index": 0, "uri": uri, "count": 1},
            "media_type": "document",
        },
    }


def test_ping_reports_healthy_once_models_load(served: tuple[str, Services]) -> None:
    endpoint, _ = served
    response = requests.get(f"{endpoint}/ping", timeout=60)
    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}


def test_invocations_run_heavy_steps_and_return_results(served: tuple[str, Services]) -> None:
    endpoint, services = served
    message = _embed_message(services)
    broken = {
        **message,
        "input": {
            "batch": {
                "source": "extract_document",
                "index": 1,
                "uri": "s3://medialens-artifacts/nope.jsonl",
                "count": 1,
            },
            "media_type": "document",
        },
    }
    response = requests.post(f"{endpoint}/invocations", data=json.dumps({"messages": [message, broken]}), timeout=120)
    assert response.status_code == 200
    ok, failed = response.json()["results"]
    assert ok["output"]["count"] == 1 and ok["output"]["model"].startswith(f"{services.settings.text_embedding_model}@")
    moments = read_jsonl(services, ok["output"]["uri"], Moment)
    assert moments[0].page == 2 and moments[0].vector is not None and len(moments[0].vector) == 384
    assert failed["error"] == "MediaLens.Internal" and "nope.jsonl" in failed["cause"]


def test_bad_requests_are_rejected(served: tuple[str, Services]) -> None:
    endpoint, _ = served
    assert requests.post(f"{endpoint}/invocations", data=b"{}", timeout=10).status_code == 400
    assert requests.post(f"{endpoint}/invocations", data=b"not json", timeout=10).status_code == 400
    assert requests.get(f"{endpoint}/nope", timeout=10).status_code == 404


def _sqs_event(bodies: list[str]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m-{n}",
                "receiptHandle": f"r-{n}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:medialens-heavy",
                "awsRegion": "us-east-1",
            }
            for n, body in enumerate(bodies)
        ]
    }


def test_the_forwarder_hands_heavy_messages_to_the_async_endpoint(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto import mock_aws

    from medialens import aws
    from medialens.handlers import forward
    from medialens.local.lambda_context import LocalLambdaContext
    from medialens.services import set_services
    from medialens.worker.serve import invoke

    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    with mock_aws():
        aws.reset_clients()
        configured = settings.model_copy(update={"sagemaker_endpoint": "medialens-dev-heavy"})
        services = Services(configured)
        set_services(services)
        try:
            message = {"TaskToken": "token-1", **_embed_message(services)}
            source = SourceObject.model_validate(message["asset"]["source"])
            services.registry.create_if_absent(Asset(asset_id="a1", source=source, pipeline_version="1"))
            answer = forward.handler(_sqs_event([json.dumps(message), "not a step"]), LocalLambdaContext("forward", 60))
            # The poison fails alone; the step went to the endpoint as one request in S3.
            assert answer == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
            (key,) = services.blobs.list_keys(f"s3://{configured.artifacts_bucket}/async-inference/input/")
            payload = json.loads(services.blobs.get_text(f"s3://{configured.artifacts_bucket}/{key}"))
            assert [m["TaskToken"] for m in payload["messages"]] == ["token-1"]
            # What the endpoint's container does with that body: runs the step and answers its task.
            assert invoke(services, payload) == {"results": [{"step": "embed_text", "answered": True}]}

            # No endpoint configured (or SageMaker refusing): every step message stays on the queue.
            set_services(Services(settings))
            again = forward.handler(_sqs_event([json.dumps(message)]), LocalLambdaContext("forward", 60))
            assert again == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
        finally:
            set_services(None)
            aws.reset_clients()
