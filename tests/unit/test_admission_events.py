import json

import pytest

from medialens.admission import ObjectCreated, parse_object_created

pytestmark = pytest.mark.unit


def test_eventbridge_object_created() -> None:
    body = json.dumps(
        {
            "version": "0",
            "detail-type": "Object Created",
            "source": "aws.s3",
            "detail": {
                "bucket": {"name": "drop"},
                "object": {"key": "incoming/a b.pdf", "size": 10, "etag": "abc", "version-id": "null"},
            },
        }
    )
    assert parse_object_created(body) == [ObjectCreated("drop", "incoming/a b.pdf", 10, "abc", None)]


def test_classic_s3_notification_keys_are_url_decoded() -> None:
    body = json.dumps(
        {
            "Records": [
                {
                    "eventName": "ObjectCreated:CompleteMultipartUpload",
                    "s3": {
                        "bucket": {"name": "drop"},
                        "object": {
                            "key": "incoming/caf%C3%A9+menu.pdf",
                            "size": 5,
                            "eTag": "e",
                            "versionId": "v1",
                        },
                    },
                },
                {
                    "eventName": "ObjectRemoved:Delete",
                    "s3": {"bucket": {"name": "drop"}, "object": {"key": "x"}},
                },
            ]
        }
    )
    assert parse_object_created(body) == [ObjectCreated("drop", "incoming/café menu.pdf", 5, "e", "v1")]


def test_s3_test_event_is_ignored_and_garbage_is_rejected() -> None:
    assert parse_object_created(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})) == []
    with pytest.raises(ValueError, match="not an S3 Object Created event"):
        parse_object_created(json.dumps({"hello": "world"}))
    with pytest.raises(json.JSONDecodeError):
        parse_object_created("not json")
