"""The heavy worker loop: the same code runs in the GPU container on AWS and as a local process.

It long-polls the heavy queue, then keeps collecting for a short window so messages from many
executions (and assets) share one model call (dynamic batching). While a batch runs it
heartbeats the tasks and extends the messages' visibility; it deletes a message only once its
task is answered, so a crash hands the work to another worker (and, after maxReceiveCount, to
the dead-letter handler).
"""

from __future__ import annotations

import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from medialens import aws
from medialens.domain.steps import StepMessage
from medialens.observability import get_logger
from medialens.services import Services, get_services
from medialens.worker.gpu import watch_gpus
from medialens.worker.memory import cap_malloc_arenas
from medialens.worker.periodic import repeating
from medialens.worker.tasks import TaskRunner

logger = get_logger("medialens-heavy")


@dataclass(frozen=True)
class HeavyWorkerConfig:
    max_batch_messages: int = 32
    batch_window_s: float = 0.25  # how long to wait for more messages once one has arrived
    wait_time_s: int = 2  # SQS long poll
    visibility_timeout_s: int = 300
    heartbeat_every_s: float = 60.0


class HeavyWorker:
    def __init__(self, services: Services, queue_url: str, config: HeavyWorkerConfig | None = None) -> None:
        self.services = services
        self.queue_url = queue_url
        self.config = config or HeavyWorkerConfig()
        self.runner = TaskRunner(services, heartbeat_every_s=self.config.heartbeat_every_s)
        self.sqs = aws.sqs(services.settings)
        self.processed = 0

    def _receive(self, max_messages: int, wait_s: int) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(10, max_messages),
            WaitTimeSeconds=wait_s,
            VisibilityTimeout=self.config.visibility_timeout_s,
            AttributeNames=["ApproximateReceiveCount"],
        )
        return [dict(message) for message in response.get("Messages", [])]

    def collect_batch(self) -> list[dict[str, Any]]:
        batch = self._receive(self.config.max_batch_messages, self.config.wait_time_s)
        if not batch:
            return batch
        deadline = time.monotonic() + self.config.batch_window_s
        while len(batch) < self.config.max_batch_messages and time.monotonic() < deadline:
            more = self._receive(self.config.max_batch_messages - len(batch), 0)
            if not more:
                time.sleep(0.05)
                continue
            batch.extend(more)
        return batch

    def run_once(self) -> int:
        """Collects one batch, runs it, answers and deletes; returns how many messages it handled."""
        raw = self.collect_batch()
        if not raw:
            return 0
        messages: list[tuple[dict[str, Any], StepMessage]] = []
        for item in raw:
            try:
                messages.append((item, StepMessage.model_validate_json(item["Body"])))
            except ValidationError:
                # No token to answer: leave it to reach the dead-letter queue and its alarm.
                logger.error("heavy queue message is not a step message", extra={"id": item["MessageId"]})
        with self._keep_invisible([item["ReceiptHandle"] for item, _ in messages]):
            self.runner.run_heavy([message for _, message in messages])
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": item["ReceiptHandle"]} for i, (item, _) in enumerate(chunk)],
            )
        self.processed += len(messages)
        return len(messages)

    def _keep_invisible(self, receipts: list[str]) -> AbstractContextManager[None]:
        """Extends the messages' visibility while their batch runs, so no other worker takes them."""
        timeout = self.config.visibility_timeout_s

        def extend() -> None:
            for receipt in receipts:
                try:
                    self.sqs.change_message_visibility(
                        QueueUrl=self.queue_url, ReceiptHandle=receipt, VisibilityTimeout=timeout
                    )
                except Exception:
                    logger.exception("could not extend message visibility")

        return repeating(max(1.0, timeout / 3), extend, "visibility-extender")

    def run(self, stop: threading.Event) -> None:
        logger.info("heavy worker started", extra={"queue": self.queue_url})
        watch_gpus(stop)  # GPU use as metrics, where there is a GPU
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:
                logger.exception("heavy worker batch failed")
                stop.wait(1.0)


def main(argv: list[str] | None = None) -> None:
    """Container entry: poll the heavy queue until SIGTERM (ECS) or an idle spell (Batch jobs)."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(description="medialens heavy inference worker")
    parser.add_argument("--exit-when-idle-s", type=float, default=0.0, help="exit after this long with no work")
    args = parser.parse_args(argv)
    cap_malloc_arenas()  # before any model or worker thread starts
    services = get_services()
    worker = HeavyWorker(services, aws.queue_url(services.settings.heavy_queue, services.settings))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    last_work = time.monotonic()
    while not stop.is_set():
        if worker.run_once():
            last_work = time.monotonic()
        elif args.exit_when_idle_s and time.monotonic() - last_work > args.exit_when_idle_s:
            logger.info("idle; exiting", extra={"idle_s": args.exit_when_idle_s})
            break


if __name__ == "__main__":
    main()
