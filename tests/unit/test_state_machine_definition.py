"""The real ASL file: shape checks that keep every work step reliable."""

import json
from collections.abc import Iterator
from typing import Any

import pytest

from medialens.domain.messages import StepName
from medialens.orchestration import asl

pytestmark = pytest.mark.unit

WAIT_FOR_TOKEN = "arn:aws:states:::sqs:sendMessage.waitForTaskToken"


def _states(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], bool]]:
    for name, state in definition["States"].items():
        yield name, state, False
        if state["Type"] == "Map":
            for inner_name, inner in state["ItemProcessor"]["States"].items():
                yield inner_name, inner, True


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return asl.load({"LightQueueUrl": "https://sqs/light", "HeavyQueueUrl": "https://sqs/heavy"})


def test_placeholders_are_exactly_the_queue_urls() -> None:
    assert asl.placeholders() == {"LightQueueUrl", "HeavyQueueUrl"}


def test_missing_substitution_is_an_error() -> None:
    with pytest.raises(KeyError, match="HeavyQueueUrl"):
        asl.render({"LightQueueUrl": "x"})


def test_every_task_waits_for_its_token_with_timeouts_and_retries(definition: dict[str, Any]) -> None:
    tasks = [(n, s, inner) for n, s, inner in _states(definition) if s["Type"] == "Task"]
    assert tasks
    for name, state, inside_map in tasks:
        assert state["Resource"] == WAIT_FOR_TOKEN, name
        assert state["TimeoutSeconds"] > state["HeartbeatSeconds"] > 0, name
        body = state["Parameters"]["MessageBody"]
        assert body["TaskToken.$"] == "$$.Task.Token", name
        assert StepName(body["step"])
        retried = {e for r in state["Retry"] for e in r["ErrorEquals"]}
        assert "MediaLens.Transient" in retried and "States.Timeout" in retried, name
        assert "MediaLens.InvalidMedia" not in retried, name  # bad input must fail fast
        assert all(r["BackoffRate"] >= 1 and r.get("JitterStrategy") == "FULL" for r in state["Retry"]), name
        if not inside_map:
            assert state["Catch"][0]["ErrorEquals"] == ["States.ALL"], name
            target = state["Catch"][0]["Next"]
            assert target in ("MarkFailed", "AssetFailed"), name


def test_every_failure_path_marks_the_asset_failed(definition: dict[str, Any]) -> None:
    states = definition["States"]
    assert states["EmbedPassages"]["Catch"][0]["Next"] == "MarkFailed"
    assert states["RouteByMediaType"]["Default"] == "UnsupportedMediaType"
    assert states["UnsupportedMediaType"]["Next"] == "MarkFailed"
    assert states["UnsupportedMediaType"]["Result"]["Cause"] == "unsupported media type"
    assert states["MarkFailed"]["Parameters"]["MessageBody"]["step"] == "mark_failed"
    assert states["MarkFailed"]["Next"] == "AssetFailed"
    assert states["AssetFailed"]["Type"] == "Fail"


def test_happy_path_order(definition: dict[str, Any]) -> None:
    states = definition["States"]
    order, name = [], definition["StartAt"]
    while name and states[name]["Type"] not in ("Succeed", "Fail"):
        order.append(name)
        state = states[name]
        name = state["Choices"][0]["Next"] if state["Type"] == "Choice" else state.get("Next")
    assert order == [
        "Probe",
        "RouteByMediaType",
        "ExtractDocument",
        "EmbedPassages",
        "IndexMoments",
        "Finalize",
    ]


def test_payloads_are_references_not_data(definition: dict[str, Any]) -> None:
    text = json.dumps(definition)
    assert len(text) < 20_000
    assert all(s.get("ResultPath") != "$" for n, s, inner in _states(definition) if not inner and s["Type"] == "Task")
