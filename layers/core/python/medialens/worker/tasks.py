"""Runs a step for a task token and answers Step Functions: success with the step's result, or
failure with an error name the state machine's Retry/Catch understand. Also heartbeats."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel

from medialens import aws
from medialens.domain.messages import AssetRef, StepMessage, StepName
from medialens.errors import MediaLensError
from medialens.observability import get_logger, stage_latency
from medialens.services import Services
from medialens.worker.periodic import repeating

logger = get_logger("medialens-tasks")

StepFunction = Callable[[Services, AssetRef, dict[str, Any]], BaseModel]

BatchStepFunction = Callable[[Services, Sequence[StepMessage]], list[BaseModel | Exception]]


def _lazy(target: str) -> Any:
    """A step imported on first use: a light Lambda only pays for the libraries of the steps it
    runs (decoders, OCR and ASR runtimes take seconds to import)."""
    module_name, _, name = target.partition(":")
    resolved: list[Any] = []

    def call(*args: Any) -> Any:
        if not resolved:
            resolved.append(getattr(importlib.import_module(module_name), name))
        return resolved[0](*args)

    call.__name__ = name
    return call


def one_at_a_time(step: StepFunction) -> BatchStepFunction:
    """A heavy step with no cross-message batching: each message runs alone and fails alone."""

    def run(services: Services, messages: Sequence[StepMessage]) -> list[BaseModel | Exception]:
        results: list[BaseModel | Exception] = []
        for message in messages:
            try:
                results.append(step(services, message.asset, message.input))
            except Exception as error:  # noqa: BLE001 - answered per message
                results.append(error)
        return results

    return run


LIGHT_STEPS: dict[StepName, StepFunction] = {
    StepName.PROBE: _lazy("medialens.pipeline.probe:probe"),
    StepName.EXTRACT_DOCUMENT: _lazy("medialens.pipeline.documents:extract_document"),
    StepName.PREPARE_AUDIO: _lazy("medialens.pipeline.audio:prepare_audio"),
    StepName.BUILD_SPEECH_SEGMENTS: _lazy("medialens.pipeline.audio:build_speech_segments"),
    StepName.BUILD_SCREEN_TEXT: _lazy("medialens.pipeline.video:build_screen_text"),
    StepName.MERGE_SEGMENTS: _lazy("medialens.pipeline.segments:merge_segments"),
    StepName.INDEX_MOMENTS: _lazy("medialens.pipeline.index:index_moments"),
    StepName.FINALIZE: _lazy("medialens.pipeline.finalize:finalize"),
    StepName.MARK_FAILED: _lazy("medialens.pipeline.finalize:mark_failed"),
}
# No cross-message batching: each message is timed and answered as soon as it is done.
_PER_MESSAGE_HEAVY_STEPS: dict[StepName, StepFunction] = {
    StepName.TRANSCRIBE_CHUNK: _lazy("medialens.pipeline.audio:transcribe_chunk"),
    StepName.DETECT_SHOTS: _lazy("medialens.pipeline.video:detect_shots"),
    StepName.ANALYZE_IMAGE: _lazy("medialens.pipeline.images:analyze_image"),
}
HEAVY_STEPS: dict[StepName, BatchStepFunction] = {
    StepName.EMBED_TEXT: _lazy("medialens.pipeline.embed:embed_text"),  # one model call for all messages
    StepName.RECOGNIZE_TEXT: _lazy("medialens.pipeline.video:recognize_text"),  # one recogniser, all keyframes
    **{step: one_at_a_time(function) for step, function in _PER_MESSAGE_HEAVY_STEPS.items()},
}
SEQUENTIAL_HEAVY_STEPS = frozenset(_PER_MESSAGE_HEAVY_STEPS)
# Bookkeeping steps do not get a stage timing: the failed stage must stay the one shown.
UNTIMED_STEPS = frozenset({StepName.MARK_FAILED})
INTERNAL_ERROR = "MediaLens.Internal"
# The task is over (timed out, execution ended): a late answer is dropped, not retried.
GONE_TASK_ERRORS = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})
MAX_CAUSE_CHARS = 32_000


class TaskAnswerer:
    """SendTaskSuccess/Failure/Heartbeat, tolerant of tasks that are already over."""

    def __init__(self, services: Services) -> None:
        self.services = services

    @property
    def sfn(self) -> Any:
        return aws.stepfunctions(self.services.settings)

    def _call(self, what: str, send: Callable[[], object]) -> bool:
        try:
            send()
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in GONE_TASK_ERRORS:
                logger.warning("task already over; answer dropped", extra={"answer": what, "code": code})
                return False
            raise
        return True

    def success(self, token: str, result: BaseModel) -> bool:
        return self._call(
            "success", lambda: self.sfn.send_task_success(taskToken=token, output=result.model_dump_json())
        )

    def failure(self, token: str, error: str, cause: str) -> bool:
        return self._call(
            "failure",
            lambda: self.sfn.send_task_failure(taskToken=token, error=error, cause=cause[:MAX_CAUSE_CHARS]),
        )

    def heartbeat(self, token: str) -> bool:
        return self._call("heartbeat", lambda: self.sfn.send_task_heartbeat(taskToken=token))

    def heartbeats(self, tokens: Sequence[str], every_s: float = 60.0) -> AbstractContextManager[None]:
        """Keeps long tasks alive while the body runs (HeartbeatSeconds in the state machine)."""

        def beat() -> None:
            for token in tokens:
                try:
                    self.heartbeat(token)
                except ClientError:
                    logger.exception("heartbeat failed")

        return repeating(every_s, beat, "task-heartbeat")


class TaskRunner:
    def __init__(self, services: Services, heartbeat_every_s: float = 60.0) -> None:
        self.services = services
        self.answer = TaskAnswerer(services)
        self.heartbeat_every_s = heartbeat_every_s

    def _end_stage(self, asset_id: str, step: StepName) -> None:
        """Closes the stage's timing on the asset and publishes it as a metric."""
        asset = self.services.registry.end_stage(asset_id, step.value)
        seconds = next((t.seconds for t in reversed(asset.timings) if t.stage == step.value), None)
        if seconds is not None:
            stage_latency(step.value, seconds)

    def _fail(self, message: StepMessage, error: Exception) -> None:
        if isinstance(error, MediaLensError):
            code, reason = error.error_name, error.reason
            logger.info("step failed", extra={"step": message.step, "error": code, "reason": reason})
        else:
            code, reason = (
                INTERNAL_ERROR,
                f"internal error in step {message.step}: {type(error).__name__}: {error}",
            )
            logger.error("step crashed", exc_info=error, extra={"step": message.step})
        if message.step is not StepName.MARK_FAILED:
            self.services.registry.record_error(message.asset.asset_id, code, reason, stage=message.step.value)
        self.answer.failure(message.task_token, code, reason)

    def run(self, message: StepMessage) -> None:
        """One light step: time it on the asset, run it, answer the task."""
        step = LIGHT_STEPS.get(message.step)
        if step is None:
            self._fail(message, MediaLensError(f"step {message.step} is not a light step"))
            return
        asset_id = message.asset.asset_id
        timed = message.step not in UNTIMED_STEPS
        try:
            with self.answer.heartbeats([message.task_token], self.heartbeat_every_s):
                if timed:
                    self.services.registry.start_stage(asset_id, message.step.value)
                result = step(self.services, message.asset, message.input)
                if timed:
                    self._end_stage(asset_id, message.step)
        except Exception as error:  # noqa: BLE001 - every failure is answered to the workflow
            self._fail(message, error)
            return
        self.answer.success(message.task_token, result)

    def run_heavy(self, messages: Sequence[StepMessage]) -> None:
        """Heavy messages grouped by step. A batching step's group is one call of its batch
        function (a model serves every message and asset at once); a one-at-a-time step's
        messages run, are timed and are answered one after another, while the group's remaining
        tasks keep heartbeating."""
        groups: dict[StepName, list[StepMessage]] = {}
        for message in messages:
            if message.step in HEAVY_STEPS:
                groups.setdefault(message.step, []).append(message)
            else:
                self._fail(message, MediaLensError(f"step {message.step} is not a heavy step"))
        for step, group in groups.items():
            calls = [[m] for m in group] if step in SEQUENTIAL_HEAVY_STEPS else [group]
            with self.answer.heartbeats([m.task_token for m in group], self.heartbeat_every_s):
                for call in calls:
                    self._run_heavy_call(step, call)

    def _run_heavy_call(self, step: StepName, call: list[StepMessage]) -> None:
        for message in call:
            self.services.registry.start_stage(message.asset.asset_id, step.value)
        try:
            results = HEAVY_STEPS[step](self.services, call)
        except Exception as error:  # noqa: BLE001 - the batch call failed for every message
            results = [error] * len(call)
        for message, result in zip(call, results, strict=True):
            if isinstance(result, Exception):
                self._fail(message, result)
            else:
                self._end_stage(message.asset.asset_id, step)
                self.answer.success(message.task_token, result)
