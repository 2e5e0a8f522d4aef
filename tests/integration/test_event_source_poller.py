"""The local event-source mapping keeps Lambda's SQS semantics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from medialens.local.poller import EventSourcePoller

pytestmark = pytest.mark.integration


@pytest.fixture
def queues() -> Iterator[tuple[Any, str, str]]:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        dlq = sqs.create_queue(QueueName="work-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = sqs.create_queue(
            QueueName="work",
            Attributes={
                "VisibilityTimeout": "0",  # failed records come straight back, so the test needs no sleep
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}),
            },
        )["QueueUrl"]
        yield sqs, url, dlq


def _count(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def test_partial_batch_failure_keeps_only_failed_records(queues: tuple[Any, str, str]) -> None:
    sqs, url, dlq = queues
    for n in range(4):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": n}))
    seen: list[int] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        assert context.function_name == "fn" and context.get_remaining_time_in_millis() > 0
        failures = []
        for record in event["Records"]:
            assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"].endswith(":work")
            n = json.loads(record["body"])["n"]
            seen.append(n)
            if n % 2:
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    poller = EventSourcePoller(sqs, url, handler, "fn", "us-east-1", batch_size=10, wait_time_s=0)
    assert poller.poll_once() == 4
    assert sorted(seen) == [0, 1, 2, 3]
    assert _count(sqs, url) == 2  # the odd ones stay for a retry
    poller.poll_once()  # second receive of the odd ones: they fail again
    poller.poll_once()  # past maxReceiveCount: moved to the DLQ on this receive
    assert _count(sqs, url) == 0
    assert _count(sqs, dlq) == 2
    assert poller.failed_records == 4


def test_a_crashed_invocation_retries_the_whole_batch(queues: tuple[Any, str, str]) -> None:
    sqs, url, _ = queues
    sqs.send_message(QueueUrl=url, MessageBody="{}")
    calls = []

    def crashing(event: dict[str, Any], context: Any) -> None:
        calls.append(len(event["Records"]))
        if len(calls) == 1:
            raise RuntimeError("boom")

    poller = EventSourcePoller(sqs, url, crashing, "fn", "us-east-1", wait_time_s=0)
    poller.poll_once()
    assert _count(sqs, url) == 1
    poller.poll_once()
    assert _count(sqs, url) == 0
    assert calls == [1, 1]
