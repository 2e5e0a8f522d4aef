"""With ``gpu.sagemakerAsync`` on, heavy steps go to the SageMaker async endpoint through the
forwarder Lambda, and the ECS service is no longer scaled on the heavy queue."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template
from infra.config import OVERRIDES_KEY, load_environment

from .conftest import BUNDLING_STACKS, synth_app

pytestmark = [pytest.mark.infra, pytest.mark.slow]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Template:
    outdir: Path = tmp_path_factory.mktemp("cdk-sagemaker")
    overrides = json.dumps({"gpu": {"sagemakerAsync": True}})
    app = synth_app(outdir, {"env": "dev", BUNDLING_STACKS: [], OVERRIDES_KEY: overrides})
    assembly = app.synth()  # cdk-nag findings fail the synth
    config = load_environment(app)
    assert config.gpu.sagemaker_async
    return Template.from_json(assembly.get_stack_by_name(f"{config.prefix}-pipeline").template)


def _one(found: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    assert len(found) == 1, list(found)
    return next(iter(found.items()))


def test_the_heavy_queue_feeds_the_endpoint_through_the_forwarder(pipeline: Template) -> None:
    functions = {
        logical_id: resource
        for logical_id, resource in pipeline.find_resources("AWS::Lambda::Function").items()
        if "Forward" in logical_id
    }
    forward_id, forward = _one(functions)
    endpoint_id, _ = _one(pipeline.find_resources("AWS::SageMaker::Endpoint"))
    variables = forward["Properties"]["Environment"]["Variables"]
    assert variables["MEDIALENS_SAGEMAKER_ENDPOINT"] == {"Fn::GetAtt": [endpoint_id, "EndpointName"]}
    mappings = [
        m["Properties"]
        for m in pipeline.find_resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": forward_id}
    ]
    (mapping,) = mappings
    assert mapping["EventSourceArn"]["Fn::GetAtt"][0].startswith("QueuesHeavy")
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    policies = json.dumps(pipeline.find_resources("AWS::IAM::Policy"))
    assert "sagemaker:InvokeEndpointAsync" in policies and json.dumps({"Ref": endpoint_id}) in policies


def test_the_ecs_workers_are_not_scaled_on_the_heavy_queue(pipeline: Template) -> None:
    targets = [t["Properties"] for t in pipeline.find_resources("AWS::ApplicationAutoScaling::ScalableTarget").values()]
    assert [t["ServiceNamespace"] for t in targets] == ["sagemaker"]
