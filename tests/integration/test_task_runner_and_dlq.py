"""The worker edge without a state machine: stage timing, EMF stage latency, late answers, and
the dead-letter handler turning dead messages into FAILED assets."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from medialens.adapters.storage.base import ObjectInfo
from medialens.domain.assets import Asset, AssetStatus, SourceObject
from medialens.domain.steps import AssetRef, StepMessage, StepName, TranscribeChunkInput, TranscribeResult
from medialens.handlers import dlq
from medialens.ids import asset_id_for, execution_name_for
from medialens.local.lambda_context import LocalLambdaContext
from medialens.local.notifications import object_event
from medialens.pipeline.catalog import CATALOG, StepSpec
from medialens.services import Services, set_services
from medialens.settings import Settings
from medialens.worker.tasks import TaskRunner

pytestmark = pytest.mark.integration


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    with mock_aws():  # Step Functions answers: tokens no execution knows are "already over"
        wired = Services(settings)
        set_services(wired)
        yield wired


def _asset(services: Services, key: str = "incoming/a.txt") -> Asset:
    stored = services.blobs.put_bytes(f"s3://medialens-drop/{key}", b"abc")
    source = SourceObject(bucket=stored.bucket, key=key, etag=stored.etag, size=stored.size)
    asset_id = asset_id_for(source.bucket, source.key, source.etag)
    asset = Asset(asset_id=asset_id, source=source, pipeline_version="1", execution_name=execution_name_for(asset_id))
    return services.registry.create_if_absent(asset)[0]


def _message(asset: Asset, step: StepName, payload: dict[str, Any]) -> StepMessage:
    return StepMessage.model_validate(
        {
            "TaskToken": "token-of-a-finished-task",
            "step": step,
            "asset": {"asset_id": asset.asset_id, "source": asset.source.model_dump(), "pipeline_version": "1"},
            "input": payload,
        }
    )


def test_a_step_is_timed_published_and_its_late_answer_dropped(
    services: Services, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    asset = _asset(services)
    TaskRunner(services).run(_message(asset, StepName.FINALIZE, {"indexed": {"indexed": 4}}))
    stored = services.registry.get(asset.asset_id)
    assert stored is not None and stored.status is AssetStatus.SUCCEEDED and stored.moment_count == 4
    assert "finalize" in stored.stage_seconds()
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"StageLatency"' in line]
    assert len(emf) == 1
    assert emf[0]["stage"] == "finalize" and emf[0]["StageLatency"][0] >= 0
    directive = emf[0]["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "medialens" and "stage" in directive["Dimensions"][0]


def test_a_terminal_step_that_retires_its_asset_still_answers(services: Services) -> None:
    """The object was removed while it was analysed: finalize removes the asset, and the runner,
    finding no asset to time, still answers the workflow."""
    asset = _asset(services)
    services.blobs.delete(asset.source.uri)
    answered: list[object] = []
    runner = TaskRunner(services)
    runner.answer.success = lambda token, outcome: answered.append(outcome)  # type: ignore[method-assign]
    runner.run(_message(asset, StepName.FINALIZE, {"indexed": {"indexed": 2}}))
    assert services.registry.get(asset.asset_id) is None
    assert answered and getattr(answered[0], "status", None) == "SUCCEEDED"


def test_no_metrics_are_printed_when_metrics_are_off(
    services: Services, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")  # as the local runtime sets it
    asset = _asset(services)
    TaskRunner(services).run(_message(asset, StepName.FINALIZE, {"indexed": {"indexed": 1}}))
    assert "StageLatency" not in capsys.readouterr().out


def test_a_failing_step_records_its_reason_before_answering(services: Services) -> None:
    asset = _asset(services)
    bad = _message(asset, StepName.EXTRACT_DOCUMENT, {"probe": {"not": "a probe"}})
    TaskRunner(services).run(bad)
    stored = services.registry.get(asset.asset_id)
    assert stored is not None and stored.status is AssetStatus.RUNNING  # terminal only via MarkFailed
    assert stored.error_code == "MediaLens.Internal" and "extract_document" in (stored.error_reason or "")


def _dlq_event(body: str, queue: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": "m-1",
                "receiptHandle": "r-1",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "4"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:us-east-1:000000000000:{queue}",
                "awsRegion": "us-east-1",
            }
        ]
    }


def test_dead_lettered_step_fails_its_asset_with_the_reason(services: Services) -> None:
    asset = _asset(services)
    body = _message(asset, StepName.PROBE, {}).model_dump_json(by_alias=True)
    response = dlq.handler(_dlq_event(body, "medialens-light-dlq"), LocalLambdaContext("dlq", 30))
    assert response == {"batchItemFailures": []}
    stored = services.registry.get(asset.asset_id)
    assert stored is not None and stored.error_code == "MediaLens.DeadLettered"
    assert "step probe was never answered" in (stored.error_reason or "")
    archived = list(services.blobs.list_objects(f"s3://{services.settings.artifacts_bucket}/dead-letters/"))
    assert [a.key for a in archived] == ["dead-letters/medialens-light-dlq/m-1.json"]


def test_a_dead_lettered_upload_still_shows_as_a_failed_asset(services: Services) -> None:
    services.blobs.put_bytes("s3://medialens-drop/incoming/report.pdf", b"%PDF-1.7 ...")
    info = services.blobs.head("s3://medialens-drop/incoming/report.pdf")
    assert isinstance(info, ObjectInfo)
    body = json.dumps(object_event(info, "us-east-1"))
    dlq.handler(_dlq_event(body, "medialens-ingest-dlq"), LocalLambdaContext("dlq", 30))
    (failed,) = services.registry.iter_all()
    assert failed.status is AssetStatus.FAILED and failed.source.key == "incoming/report.pdf"
    assert failed.error_code == "MediaLens.DeadLettered" and "admission failed" in (failed.error_reason or "")


def test_an_unknown_dead_letter_is_only_archived(services: Services) -> None:
    dlq.handler(_dlq_event("not json at all", "medialens-heavy-dlq"), LocalLambdaContext("dlq", 30))
    assert services.registry.iter_all() == []
    assert len(list(services.blobs.list_objects(f"s3://{services.settings.artifacts_bucket}/dead-letters/"))) == 1


def test_a_resumed_execution_reuses_what_its_steps_answered(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    asset = _asset(services)
    computed: list[str] = []
    execute = StepSpec.execute

    def counting(self: StepSpec[Any, Any], wired: Services, calls: Any) -> Any:
        computed.append(self.name.value)
        return execute(self, wired, calls)

    monkeypatch.setattr(StepSpec, "execute", counting)
    runner = TaskRunner(services)
    probe = _message(asset, StepName.PROBE, {})
    runner.run(probe)
    first = services.registry.get(asset.asset_id)
    assert first is not None and first.media_type is not None
    runner.run(probe)  # the same execution, started again after a crash: the probe is not redone
    assert computed == ["probe"]
    # A re-run is a new execution: everything is computed again.
    services.registry.mutate(asset.asset_id, lambda a: setattr(a, "execution_name", f"{a.execution_name}-r1"))
    runner.run(probe)
    assert computed == ["probe", "probe"]


def test_a_step_whose_model_serves_two_at_once_runs_two_messages_side_by_side(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each call waits for the other at a barrier: one after another, both would time out."""
    meeting = threading.Barrier(2, timeout=20)

    def transcribe(_: Services, asset: AssetRef, request: TranscribeChunkInput) -> TranscribeResult:
        meeting.wait()
        return TranscribeResult(index=request.chunk.index, uri=f"s3://x/{asset.asset_id}.json", words=1, model="m")

    spec = dataclasses.replace(CATALOG[StepName.TRANSCRIBE_CHUNK], run=transcribe, concurrency=lambda _: 2)
    monkeypatch.setitem(CATALOG, StepName.TRANSCRIBE_CHUNK, spec)
    assets = [_asset(services, f"incoming/{n}.wav") for n in range(2)]
    chunk = {"index": 0, "uri": "s3://x/chunk.wav", "start": 0.0, "end": 5.0}
    answered: list[object] = []
    runner = TaskRunner(services)
    runner.answer.success = lambda token, outcome: answered.append(outcome)  # type: ignore[method-assign]
    runner.answer.failure = lambda token, error, cause: answered.append(error)  # type: ignore[method-assign]
    runner.run_heavy([_message(asset, StepName.TRANSCRIBE_CHUNK, {"chunk": chunk}) for asset in assets])
    assert sorted(getattr(outcome, "uri", str(outcome)) for outcome in answered) == sorted(
        f"s3://x/{asset.asset_id}.json" for asset in assets
    )
    for asset in assets:
        stored = services.registry.get(asset.asset_id)
        assert stored is not None and "transcribe_chunk" in stored.stage_seconds()
        assert [t.shared_by for t in stored.timings if t.stage == "transcribe_chunk"] == [2]


def test_side_by_side_the_longest_chunks_start_first(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """Longest processing time first: a group whose longest chunk started last would end on that
    chunk alone, one core busy and the other idle."""
    started: list[float] = []
    lock = threading.Lock()
    first_two = threading.Barrier(2, timeout=20)  # neither returns before both have started

    def transcribe(_: Services, asset: AssetRef, request: TranscribeChunkInput) -> TranscribeResult:
        with lock:
            started.append(request.chunk.end - request.chunk.start)
            first = len(started) <= 2
        if first:
            first_two.wait()
        return TranscribeResult(index=request.chunk.index, uri=f"s3://x/{asset.asset_id}.json", words=1, model="m")

    spec = dataclasses.replace(CATALOG[StepName.TRANSCRIBE_CHUNK], run=transcribe, concurrency=lambda _: 2)
    monkeypatch.setitem(CATALOG, StepName.TRANSCRIBE_CHUNK, spec)
    lengths = [5.0, 90.0, 12.0, 60.0]
    messages = [
        _message(
            _asset(services, f"incoming/{n}.wav"),
            StepName.TRANSCRIBE_CHUNK,
            {"chunk": {"index": 0, "uri": f"s3://x/{n}.wav", "start": 30.0, "end": 30.0 + length}},
        )
        for n, length in enumerate(lengths)
    ]
    runner = TaskRunner(services)
    runner.answer.success = lambda token, outcome: None  # type: ignore[method-assign]
    runner.run_heavy(messages)
    # The two longest start together; the others wait for one of them to end.
    assert sorted(started[:2]) == [60.0, 90.0] and sorted(started[2:]) == [5.0, 12.0]
    assert CATALOG[StepName.ANALYZE_IMAGE].work is None  # steps without an estimate keep arrival order


def test_only_per_message_heavy_steps_run_side_by_side() -> None:
    batching = CATALOG[StepName.EMBED_TEXT]
    with pytest.raises(ValueError, match="side by side"):
        dataclasses.replace(batching, concurrency=lambda _: 2)
    assert CATALOG[StepName.TRANSCRIBE_CHUNK].concurrency is not None
    assert CATALOG[StepName.ANALYZE_IMAGE].side_by_side(Settings()) == 1
    with pytest.raises(ValueError, match="order them by work"):
        dataclasses.replace(CATALOG[StepName.ANALYZE_IMAGE], work=lambda _: 1.0)
