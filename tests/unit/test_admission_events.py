import json
from typing import Any

import pytest
from pydantic import ValidationError

from medialens.admission import ExecutionEnded, ObjectCreated, ObjectRemoved, parse_events

pytestmark = pytest.mark.unit


def _eventbridge(obj: dict[str, Any], detail_type: str = "Object Created") -> str:
    """An S3 → EventBridge event, shaped as S3 sends it."""
    return json.dumps(
        {
            "version": "0",
            "id": "17793124-05d4-b198-2fde-7ededc63b103",
            "detail-type": detail_type,
            "source": "aws.s3",
            "account": "111122223333",
            "time": "2026-11-28T22:11:54Z",
            "region": "eu-north-1",
            "resources": ["arn:aws:s3:::drop"],
            "detail": {
                "version": "0",
                "bucket": {"name": "drop"},
                "object": obj,
                "request-id": "N4N7GDK58NMKJ12R",
                "requester": "111122223333",
                "source-ip-address": "1.2.3.4",
                "reason": "PutObject",
            },
        }
    )


def _record(event_name: str, key: str, **obj: Any) -> dict[str, Any]:
    """One record of a classic S3 event notification."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "eu-north-1",
        "eventTime": "2026-11-28T22:11:54.000Z",
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "1.2.3.4"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "medialens",
            "bucket": {
                "name": "drop",
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": "arn:aws:s3:::drop",
            },
            "object": {"key": key, "sequencer": "0055AED6DCD90281E5", **obj},
        },
    }


def test_eventbridge_object_created() -> None:
    body = _eventbridge({"key": "incoming/a b.pdf", "size": 10, "etag": "abc", "version-id": "null"})
    assert parse_events(body) == [ObjectCreated("drop", "incoming/a b.pdf", 10, "abc", None)]


def test_eventbridge_etag_spelled_as_an_emulator_does() -> None:
    body = _eventbridge({"key": "incoming/a.pdf", "size": 10, "eTag": "abc", "version-id": "v7"})
    assert parse_events(body) == [ObjectCreated("drop", "incoming/a.pdf", 10, "abc", "v7")]


def test_classic_s3_notification_keys_are_url_decoded() -> None:
    body = json.dumps(
        {
            "Records": [
                _record(
                    "ObjectCreated:CompleteMultipartUpload",
                    "incoming/caf%C3%A9+menu.pdf",
                    size=5,
                    eTag="e",
                    versionId="v1",
                ),
                _record("ObjectRemoved:Delete", "x"),
            ]
        }
    )
    assert parse_events(body) == [
        ObjectCreated("drop", "incoming/café menu.pdf", 5, "e", "v1"),
        ObjectRemoved("drop", "x"),
    ]


def test_s3_test_event_is_ignored_and_garbage_is_rejected() -> None:
    assert parse_events(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})) == []
    with pytest.raises(ValueError, match="not an S3 object event"):
        parse_events(json.dumps({"hello": "world"}))
    with pytest.raises(ValueError, match="not an S3 object event"):
        parse_events(_eventbridge({"key": "incoming/a.pdf"}, detail_type="Object Restore Completed"))
    with pytest.raises(json.JSONDecodeError):
        parse_events("not json")


def test_an_event_missing_what_s3_always_sends_is_rejected() -> None:
    with pytest.raises(ValidationError):
        parse_events(json.dumps({"source": "aws.s3", "detail-type": "Object Created", "detail": {}}))


def test_eventbridge_object_deleted() -> None:
    obj = {"key": "incoming/a.pdf", "version-id": "null", "sequencer": "00617F08299329D189"}
    body = _eventbridge(obj, "Object Deleted")
    assert parse_events(body) == [ObjectRemoved("drop", "incoming/a.pdf")]


def _status_change(status: str, **detail: Any) -> str:
    """A Step Functions "Execution Status Change" event, shaped as EventBridge delivers it."""
    return json.dumps(
        {
            "version": "0",
            "id": "315c1398-40ff-a850-213b-158f73e60175",
            "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states",
            "account": "111122223333",
            "time": "2026-11-28T22:11:54Z",
            "region": "eu-north-1",
            "resources": ["arn:aws:states:eu-north-1:111122223333:execution:analyze:a1-p1"],
            "detail": {
                "executionArn": "arn:aws:states:eu-north-1:111122223333:execution:analyze:a1-p1",
                "stateMachineArn": "arn:aws:states:eu-north-1:111122223333:stateMachine:analyze",
                "name": "a1-p1",
                "status": status,
                "startDate": 1764367914000,
                "stopDate": 1764371514000,
                **detail,
            },
        }
    )


def test_an_execution_that_ended_badly_names_its_asset() -> None:
    source = {"bucket": "drop", "key": "incoming/a.pdf", "etag": "e", "size": 1}
    execution_input = json.dumps({"asset": {"asset_id": "a1", "source": source, "pipeline_version": "1"}})
    timed_out = parse_events(_status_change("TIMED_OUT", input=execution_input, error=None, cause=None))
    assert timed_out == [ExecutionEnded("a1-p1", "TIMED_OUT", "a1", None, None)]
    # Input left out (over the event's size limit): the execution name starts with the asset id.
    aborted = parse_events(_status_change("ABORTED", error="States.Aborted", cause="stopped by hand"))
    assert aborted == [ExecutionEnded("a1-p1", "ABORTED", "a1", "States.Aborted", "stopped by hand")]
    assert parse_events(_status_change("SUCCEEDED")) == []
