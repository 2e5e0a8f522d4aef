"""The real ASL file: shape checks that keep every work step reliable."""

import json
from collections.abc import Iterator
from typing import Any

import pytest

from medialens.orchestration import asl

pytestmark = pytest.mark.unit

WAIT_FOR_TOKEN = "arn:aws:states:::sqs:sendMessage.waitForTaskToken"


def _states(definition: dict[str, Any], inner: bool = False) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """Every state, with whether it sits inside a Map or Parallel (errors propagate from there)."""
    for name, state in definition["States"].items():
        yield name, state, inner
        if state["Type"] == "Map":
            yield from _states(state["ItemProcessor"], inner=True)
        if state["Type"] == "Parallel":
            for branch in state["Branches"]:
                yield from _states(branch, inner=True)


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
    for container in ("EmbedPassages", "AnalyzeTimeline"):
        assert states[container]["Catch"][0] == {
            "ErrorEquals": ["States.ALL"],
            "ResultPath": "$.error",
            "Next": "MarkFailed",
        }
    assert states["RouteByMediaType"]["Default"] == "UnsupportedMediaType"
    assert states["UnsupportedMediaType"]["Next"] == "MarkFailed"
    assert states["UnsupportedMediaType"]["Result"]["Cause"] == "unsupported media type"
    assert states["MarkFailed"]["Parameters"]["MessageBody"]["step"] == "mark_failed"
    assert states["MarkFailed"]["Next"] == "AssetFailed"
    assert states["AssetFailed"]["Type"] == "Fail"


def _path(definition: dict[str, Any], media_type: str) -> list[str]:
    states = definition["States"]
    order, name = [], definition["StartAt"]
    while name and states[name]["Type"] not in ("Succeed", "Fail"):
        order.append(name)
        state = states[name]
        if state["Type"] == "Choice":
            matches = [c["Next"] for c in state["Choices"] if f'"{media_type}"' in json.dumps(c)]
            name = matches[0] if matches else state.get("Default", "")
        else:
            name = state.get("Next")
    return order


@pytest.mark.parametrize(
    ("media_type", "branch"),
    [
        ("document", ["ExtractDocument", "HasScannedPages", "TextLayerOutputs", "NarrationRequested"]),
        ("image", ["AnalyzeImage"]),
        ("video", ["AnalyzeTimeline"]),
        ("audio", ["AnalyzeTimeline"]),
    ],
)
def test_every_media_type_reaches_embedding_indexing_and_finalize(
    definition: dict[str, Any], media_type: str, branch: list[str]
) -> None:
    tail = ["EmbedPassages", "IndexMoments", "Finalize"]
    assert _path(definition, media_type) == ["Probe", *NOT_SEEN_BEFORE, "RouteByMediaType", *branch, *tail]


NOT_SEEN_BEFORE = ["ReuseAnalysis", "AnalysedBefore"]


def test_unknown_media_types_are_unsupported(definition: dict[str, Any]) -> None:
    assert _path(definition, "unknown") == [
        "Probe",
        *NOT_SEEN_BEFORE,
        "RouteByMediaType",
        "UnsupportedMediaType",
        "MarkFailed",
    ]


def test_an_analysis_reused_goes_straight_to_the_index(definition: dict[str, Any]) -> None:
    states = definition["States"]
    assert states["Probe"]["Next"] == "ReuseAnalysis"
    assert states["ReuseAnalysis"]["Parameters"]["MessageBody"]["step"] == "reuse_analysis"
    assert states["ReuseAnalysis"]["ResultPath"] == "$.reuse"
    (reused,) = states["AnalysedBefore"]["Choices"]
    assert reused == {"Variable": "$.reuse.reused", "BooleanEquals": True, "Next": "ReusedMoments"}
    assert states["AnalysedBefore"]["Default"] == "RouteByMediaType"
    # IndexMoments reads $.embedded: the copied moments go exactly there.
    assert states["ReusedMoments"] == {
        "Type": "Pass",
        "InputPath": "$.reuse.embedded",
        "ResultPath": "$.embedded",
        "Next": "IndexMoments",
    }
    assert states["IndexMoments"]["Parameters"]["MessageBody"]["input"] == {"embedded.$": "$.embedded"}


def test_timeline_branches_skip_what_a_file_lacks(definition: dict[str, Any]) -> None:
    visual, speech = definition["States"]["AnalyzeTimeline"]["Branches"]
    for branch, flag, skip in ((visual, "has_video", "NoVideo"), (speech, "has_audio", "NoAudio")):
        choice = branch["States"][branch["StartAt"]]
        assert flag in json.dumps(choice["Choices"]) and choice["Default"] == skip
        assert branch["States"][skip]["Result"] == {"batches": [], "passages": 0}


def test_every_branch_ends_with_passage_batches(definition: dict[str, Any]) -> None:
    for branch in definition["States"]["AnalyzeTimeline"]["Branches"]:
        ends = [s for s in branch["States"].values() if s.get("End")]
        assert ends
        assert all("batches" in json.dumps(s.get("ResultSelector", s.get("Result"))) for s in ends)


def test_payloads_are_references_not_data(definition: dict[str, Any]) -> None:
    text = json.dumps(definition)
    # About 600 characters per state on average: a definition that grows much faster than its
    # states carries data it should reference.
    assert len(text) < 900 * sum(1 for _ in _states(definition))
    assert all(s.get("ResultPath") != "$" for n, s, inner in _states(definition) if not inner and s["Type"] == "Task")


def test_scanned_pages_are_read_before_the_document_is_embedded(definition: dict[str, Any]) -> None:
    states = definition["States"]
    (choice,) = states["HasScannedPages"]["Choices"]
    assert choice == {"Variable": "$.extract.ocr_pages", "NumericGreaterThan": 0, "Next": "ReadScannedPages"}
    order, name = [], "ReadScannedPages"
    while name != "NarrationRequested":
        order.append(name)
        name = states[name]["Next"]
    assert order == ["ReadScannedPages", "BuildPageText", "DocumentOutputs"]
    # Both the text layer's and the scanned pages' passages are embedded, as two outputs.
    assert states["DocumentOutputs"]["Parameters"] == {"outputs.$": "States.Array($.extract, $.page_text)"}
    assert states["TextLayerOutputs"]["Parameters"] == {"outputs.$": "States.Array($.extract)"}
    for container in ("ReadScannedPages", "BuildPageText"):
        assert states[container]["Catch"][0]["Next"] == "MarkFailed"


def test_word_and_powerpoint_files_go_to_the_heavy_office_step(definition: dict[str, Any]) -> None:
    states = definition["States"]
    first = states["RouteByMediaType"]["Choices"][0]  # before the generic document route
    mimes = {choice["StringEquals"] for choice in first["Or"]}
    assert all(mime.startswith("application/vnd.openxmlformats-officedocument.") for mime in mimes) and len(mimes) == 2
    assert first["Next"] == "ExtractOfficeDocument"
    office = states["ExtractOfficeDocument"]
    assert office["Parameters"]["QueueUrl"] == "https://sqs/heavy" and office["Next"] == "NarrationRequested"
    assert office["ResultSelector"] == {"outputs.$": "States.Array($)"} and office["ResultPath"] == "$.segments"


def test_documents_uploaded_with_narration_asked_for_are_narrated_before_embedding(definition: dict[str, Any]) -> None:
    states = definition["States"]
    choice = states["NarrationRequested"]
    assert choice["Default"] == "EmbedPassages"
    (narrate,) = choice["Choices"]
    flag = "$.asset.source.options.narrate"
    # IsPresent first: an execution started before the option existed has no such field.
    assert narrate["And"] == [{"Variable": flag, "IsPresent": True}, {"Variable": flag, "BooleanEquals": True}]
    assert narrate["Next"] == "NarrateDocument"
    task = states["NarrateDocument"]
    assert task["Parameters"]["QueueUrl"] == "https://sqs/heavy"
    assert task["Parameters"]["MessageBody"]["input"] == {"segments.$": "$.segments"}
    assert task["ResultPath"] == "$.segments" and task["Next"] == "EmbedPassages"
    assert task["Catch"][0]["Next"] == "MarkFailed"
    # Every way out of a document's analysis passes the choice.
    for name in ("ExtractOfficeDocument", "TextLayerOutputs", "DocumentOutputs"):
        assert states[name]["Next"] == "NarrationRequested"
