"""Runs a step for a task token and answers Step Functions: success with the step's result, or
failure with an error name the state machine's Retry/Catch understand. Also heartbeats, and
reuses what the same execution's step already answered (``step_outputs``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel

from medialens import aws
from medialens.domain.steps import StepCall, StepMessage
from medialens.errors import MediaLensError
from medialens.observability import get_logger, stage_latency
from medialens.pipeline.catalog import CATALOG, StepSpec, WorkerClass
from medialens.services import Services
from medialens.worker.periodic import repeating
from medialens.worker.step_outputs import StepOutputs

logger = get_logger("medialens-tasks")

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
    """Runs step messages through the catalogue: validates each input into its step's model,
    times the stage on the asset, and answers the task."""

    def __init__(self, services: Services, heartbeat_every_s: float = 60.0) -> None:
        self.services = services
        self.answer = TaskAnswerer(services)
        self.outputs = StepOutputs(services)
        self.heartbeat_every_s = heartbeat_every_s

    def _spec(self, message: StepMessage, worker: WorkerClass) -> StepSpec[Any, Any] | None:
        spec = CATALOG.get(message.step)
        if spec is None or spec.worker is not worker:
            self._fail(message, MediaLensError(f"step {message.step} is not a {worker} step"))
            return None
        return spec

    def _start_stage(
        self, spec: StepSpec[Any, Any], message: StepMessage, batch_size: int = 1, shared_by: int = 1
    ) -> str | None:
        """Opens the stage's timing (with the batch the call serves and the calls beside it); the
        name of the execution the asset runs in (None for a bookkeeping step, whose output is
        never kept)."""
        if spec.bookkeeping:
            return None
        registry = self.services.registry
        started = registry.start_stage(
            message.asset.asset_id, spec.name.value, batch_size=batch_size, shared_by=shared_by
        )
        return started.execution_name

    def _execute(
        self, spec: StepSpec[Any, Any], calls: Sequence[tuple[str | None, StepCall[Any]]]
    ) -> list[BaseModel | Exception]:
        """The outcome of each call: the output its execution's step already gave, else what the
        step computes now (kept for a resumed run)."""
        outcomes: list[BaseModel | Exception | None] = [self.outputs.recall(e, spec, call) for e, call in calls]
        missing = [n for n, outcome in enumerate(outcomes) if outcome is None]
        if missing:
            for n, outcome in zip(missing, spec.execute(self.services, [calls[n][1] for n in missing]), strict=True):
                outcomes[n] = outcome
                if not isinstance(outcome, Exception):
                    self.outputs.keep(calls[n][0], spec, calls[n][1], outcome)
        return [outcome for outcome in outcomes if outcome is not None]

    def _end_stage(self, spec: StepSpec[Any, Any], message: StepMessage) -> None:
        """Closes the stage's timing on the asset and publishes it as a metric."""
        if spec.bookkeeping:
            return
        try:
            asset = self.services.registry.end_stage(message.asset.asset_id, spec.name.value)
        except KeyError:
            return  # a terminal step retired its asset (the object was removed or superseded)
        seconds = next((t.seconds for t in reversed(asset.timings) if t.stage == spec.name.value), None)
        if seconds is not None:
            stage_latency(spec.name.value, seconds)

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
        spec = CATALOG.get(message.step)
        if spec is None or not spec.bookkeeping:
            self.services.registry.record_error(message.asset.asset_id, code, reason, stage=message.step.value)
        self.answer.failure(message.task_token, code, reason)

    def _answer(self, spec: StepSpec[Any, Any], message: StepMessage, outcome: BaseModel | Exception) -> None:
        """Closes the stage and answers the task; every failure, recording the stage's end
        included, is answered to the workflow."""
        if not isinstance(outcome, Exception):
            try:
                self._end_stage(spec, message)
            except Exception as error:  # noqa: BLE001 - answered as the step's failure
                outcome = error
        if isinstance(outcome, Exception):
            self._fail(message, outcome)
        else:
            self.answer.success(message.task_token, outcome)

    def _calls(
        self, spec: StepSpec[Any, Any], messages: Sequence[StepMessage]
    ) -> list[tuple[StepMessage, StepCall[Any]]]:
        """Each message's typed call; a message whose input does not validate is failed here."""
        calls = []
        for message in messages:
            try:
                calls.append((message, spec.call(message.asset, message.input)))
            except MediaLensError as error:
                self._start_stage(spec, message)  # the asset shows the stage that refused its input
                self._fail(message, error)
        return calls

    def run(self, message: StepMessage) -> None:
        """One light step: time it on the asset, run it, answer the task."""
        spec = self._spec(message, WorkerClass.LIGHT)
        if spec is None:
            return
        with self.answer.heartbeats([message.task_token], self.heartbeat_every_s):
            for _, call in self._calls(spec, [message]):
                outcome: BaseModel | Exception
                try:
                    execution = self._start_stage(spec, message)
                    (outcome,) = self._execute(spec, [(execution, call)])
                except Exception as error:  # noqa: BLE001 - every failure is answered to the workflow
                    outcome = error
                self._answer(spec, message, outcome)

    def run_heavy(self, messages: Sequence[StepMessage]) -> None:
        """Heavy messages grouped by step. A batching step's group is one call of its batch
        function (a model serves every message and asset at once); a per-message step's
        messages run, are timed and are answered one after another, or as many side by side as
        its model serves at once (``StepSpec.concurrency``, the most work first where the step
        estimates it), while the group's remaining tasks keep heartbeating."""
        groups: dict[StepSpec[Any, Any], list[StepMessage]] = {}
        for message in messages:
            spec = self._spec(message, WorkerClass.HEAVY)
            if spec is not None:
                groups.setdefault(spec, []).append(message)
        for spec, group in groups.items():
            with self.answer.heartbeats([m.task_token for m in group], self.heartbeat_every_s):
                calls = self._calls(spec, group)
                if spec.run_batch is not None:
                    self._run_calls(spec, calls)
                    continue
                if spec.work is not None:
                    work = spec.work
                    calls.sort(key=lambda item: work(item[1].input), reverse=True)
                at_once = min(len(calls), spec.side_by_side(self.services.settings))
                if at_once <= 1:
                    for call in calls:
                        self._run_calls(spec, [call])
                    continue
                with ThreadPoolExecutor(at_once, thread_name_prefix=f"heavy-{spec.name.value}") as pool:
                    runs = [pool.submit(self._run_calls, spec, [call], at_once) for call in calls]
                for run in runs:
                    run.result()  # what went wrong outside a step (it answers its own failures)

    def _run_calls(
        self, spec: StepSpec[Any, Any], batch: Sequence[tuple[StepMessage, StepCall[Any]]], shared_by: int = 1
    ) -> None:
        """One call of the step for ``batch`` (one message, or a batching step's whole group):
        timed on each asset (with the calls it ran beside), each message answered."""
        executions = [self._start_stage(spec, message, len(batch), shared_by) for message, _ in batch]
        outcomes = self._execute(spec, list(zip(executions, [call for _, call in batch], strict=True)))
        for (message, _), outcome in zip(batch, outcomes, strict=True):
            self._answer(spec, message, outcome)
