"""A local event-source mapping with Lambda's SQS semantics: batches, the queue's visibility
timeout, partial batch failure (only the records the handler reports failed stay), and the
queue's RedrivePolicy (maxReceiveCount → DLQ) doing the dead-lettering."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from medialens.insight.report import QUEUE_WAIT
from medialens.local.lambda_context import LocalLambdaContext
from medialens.observability import get_logger, record_local

logger = get_logger("medialens-poller")

Handler = Callable[[dict[str, Any], Any], Any]


def to_lambda_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class EventSourcePoller:
    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Handler,
        function_name: str,
        region: str,
        batch_size: int = 10,
        wait_time_s: int = 1,
        timeout_s: int = 900,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.handler = handler
        self.function_name = function_name
        self.region = region
        self.batch_size = batch_size
        self.wait_time_s = wait_time_s
        self.timeout_s = timeout_s
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
        self.queue_arn: str = attributes["QueueArn"]
        self.queue_name = self.queue_arn.rsplit(":", 1)[-1]
        self.invocations = 0
        self.failed_records = 0

    def poll_once(self) -> int:
        """Receives one batch and invokes the handler once; returns the number of records."""
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self.wait_time_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return 0
        sent = [int(m.get("Attributes", {}).get("SentTimestamp", 0)) for m in messages]
        if any(sent):  # how long the oldest of them waited: the queue's age of oldest message, as seen here
            waited = max(0.0, time.time() - min(t for t in sent if t) / 1000)
            record_local(QUEUE_WAIT, waited, {"queue": self.queue_name})
        event = {"Records": [to_lambda_record(m, self.queue_arn, self.region) for m in messages]}
        context = LocalLambdaContext(self.function_name, self.timeout_s, region=self.region)
        self.invocations += 1
        try:
            result = self.handler(event, context) or {}
        except Exception:
            logger.exception("handler invocation failed", extra={"function": self.function_name})
            self.failed_records += len(messages)
            return len(messages)
        failed = {item["itemIdentifier"] for item in result.get("batchItemFailures", [])}
        self.failed_records += len(failed)
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
                ],
            )
        return len(messages)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.poll_once()
            except Exception:
                logger.exception("poll failed", extra={"function": self.function_name})
                stop.wait(1.0)
