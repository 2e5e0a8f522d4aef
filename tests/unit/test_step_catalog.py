"""The step catalogue and the state machine agree: every Task names a catalogued step, sends it
to its worker class's queue with the input its model needs, and every catalogued step is used."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from medialens.domain.steps import StepName
from medialens.errors import StepInputError
from medialens.orchestration import asl
from medialens.pipeline.catalog import CATALOG, Batching, StepSpec, WorkerClass

pytestmark = pytest.mark.unit

QUEUES = {WorkerClass.LIGHT: "https://sqs/light", WorkerClass.HEAVY: "https://sqs/heavy"}


def _tasks(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        if state["Type"] == "Task":
            yield name, state
        if state["Type"] == "Map":
            yield from _tasks(state["ItemProcessor"]["States"])
        if state["Type"] == "Parallel":
            for branch in state["Branches"]:
                yield from _tasks(branch["States"])


@pytest.fixture(scope="module")
def tasks() -> dict[str, dict[str, Any]]:
    definition = asl.load({"LightQueueUrl": QUEUES[WorkerClass.LIGHT], "HeavyQueueUrl": QUEUES[WorkerClass.HEAVY]})
    return dict(_tasks(definition["States"]))


def test_every_step_name_has_exactly_one_catalogue_row() -> None:
    assert set(CATALOG) == set(StepName)
    assert all(name is spec.name for name, spec in CATALOG.items())


def test_every_task_names_a_catalogued_step_and_every_step_has_a_task(tasks: dict[str, dict[str, Any]]) -> None:
    named = [state["Parameters"]["MessageBody"]["step"] for state in tasks.values()]
    assert set(named) <= {step.value for step in CATALOG}, "a state names a step the catalogue lacks"
    assert {step.value for step in CATALOG} <= set(named), "a catalogued step is never sent"


def test_every_task_goes_to_its_worker_class_queue(tasks: dict[str, dict[str, Any]]) -> None:
    for name, state in tasks.items():
        spec = CATALOG[StepName(state["Parameters"]["MessageBody"]["step"])]
        assert state["Parameters"]["QueueUrl"] == QUEUES[spec.worker], name


def test_every_task_sends_the_fields_its_input_model_requires(tasks: dict[str, dict[str, Any]]) -> None:
    for name, state in tasks.items():
        body = state["Parameters"]["MessageBody"]
        spec = CATALOG[StepName(body["step"])]
        sent = {key.removesuffix(".$") for key in body["input"]}
        required = {field for field, info in spec.input.model_fields.items() if info.is_required()}
        assert required <= sent, f"{name} sends {sorted(sent)}; {spec.input.__name__} requires {sorted(required)}"
        assert sent <= set(spec.input.model_fields), f"{name} sends fields {spec.input.__name__} does not read"


def test_only_heavy_steps_batch_across_messages() -> None:
    batched = {spec.name for spec in CATALOG.values() if spec.batching is Batching.ACROSS_MESSAGES}
    assert batched == {
        StepName.EMBED_TEXT,
        StepName.RECOGNIZE_TEXT,
        StepName.RECOGNIZE_PAGES,
        StepName.LABEL_KEYFRAMES,
    }
    with pytest.raises(ValueError, match="only heavy workers"):
        StepSpec(
            StepName.PROBE,
            CATALOG[StepName.PROBE].input,
            CATALOG[StepName.PROBE].output,
            WorkerClass.LIGHT,
            run_batch=lambda services, calls: [],
        )
    with pytest.raises(ValueError, match="exactly one"):
        StepSpec(StepName.PROBE, CATALOG[StepName.PROBE].input, CATALOG[StepName.PROBE].output, WorkerClass.LIGHT)


def test_an_input_that_does_not_match_its_model_names_the_step_and_the_field() -> None:
    spec = CATALOG[StepName.EXTRACT_DOCUMENT]
    with pytest.raises(StepInputError) as raised:
        spec.call(_asset(), {"probe": {"not": "a probe"}})
    assert raised.value.error_name == "MediaLens.Internal"
    assert "extract_document" in raised.value.reason and "probe.media_type" in raised.value.reason


def _asset() -> Any:
    from medialens.domain.assets import SourceObject
    from medialens.domain.steps import AssetRef

    return AssetRef(asset_id="a1", source=SourceObject(bucket="b", key="k", etag="e", size=1), pipeline_version="1")
