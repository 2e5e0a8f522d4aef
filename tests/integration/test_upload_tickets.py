"""Uploads through the API: tickets, the bytes sent the way a browser sends them, completion.

On AWS the bytes go straight to S3 (moto's server here, over HTTP): a presigned POST for files
below the multipart threshold, presigned part PUTs above it. Locally the ticket is a PUT to
``medialens serve``, which applies the same rules.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer
from tests.integration.test_api import rest_event

from medialens import aws
from medialens.api.app import app
from medialens.domain.assets import UploadOptions
from medialens.ids import asset_id_for
from medialens.local.server import LocalServer
from medialens.services import Services, set_services
from medialens.settings import Profile, Settings
from medialens.uploads.s3 import MIB, part_size_for

pytestmark = pytest.mark.integration

PART = 5 * MIB  # S3's smallest part: the test file spans three parts, the last one short


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws_services(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    bucket = f"drop-{os.urandom(4).hex()}"
    settings = Settings(
        home=tmp_path,
        profile_override=Profile.AWS,
        aws_endpoint_url=s3_endpoint,
        region="eu-north-1",
        drop_bucket=bucket,
        upload_multipart_bytes=PART + 1,
        upload_part_bytes=PART,
        upload_max_bytes=64 * MIB,
    )
    aws.reset_clients()
    s3 = aws.s3(settings)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-north-1"})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    services = Services(settings)
    set_services(services)
    yield services
    set_services(None)
    aws.reset_clients()


def call(method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    answer = app.resolve(rest_event(method, path, body=body), None)
    return int(answer["statusCode"]), json.loads(answer["body"])


def ticket_for(name: str, size: int, narrate: bool = False) -> dict[str, Any]:
    status, ticket = call("POST", "/uploads", {"name": name, "size": size, "options": {"narrate": narrate}})
    assert status == 201, ticket
    return ticket


def test_a_small_file_goes_up_as_one_presigned_post_pinned_to_its_key_type_and_size(aws_services: Services) -> None:
    data = b"Speaker one: the quarterly numbers are in.\n" * 100
    ticket = ticket_for("notes/minutes.txt", len(data), narrate=True)
    assert ticket["method"] == "POST"
    assert ticket["key"] == "incoming/uploads/minutes.txt"  # only the last part of the name is kept
    policy = json.loads(base64.b64decode(ticket["fields"]["policy"]))
    conditions = policy["conditions"]
    assert {"key": "incoming/uploads/minutes.txt"} in conditions
    assert {"Content-Type": "text/plain"} in conditions
    assert {"x-amz-meta-medialens-narrate": "true"} in conditions
    assert ["content-length-range", len(data), len(data)] in conditions

    # What a browser sends: the fields in order, the file last.
    sent = requests.post(ticket["url"], data=ticket["fields"], files={"file": ("minutes.txt", data)}, timeout=30)
    assert sent.status_code == 204, sent.text

    status, uploaded = call("POST", "/uploads/complete", {"key": ticket["key"], "size": len(data)})
    assert status == 200, uploaded
    head = aws_services.blobs.head(f"s3://{aws_services.settings.drop_bucket}/{ticket['key']}")
    assert head is not None and head.size == len(data)
    assert head.metadata.get("medialens-narrate") == "true"
    expected_revision = (head.version_id or head.etag) + UploadOptions(narrate=True).fingerprint
    assert uploaded["asset_id"] == asset_id_for(head.bucket, head.key, expected_revision)


def test_a_file_over_the_threshold_goes_up_in_presigned_parts_and_is_joined_whole(aws_services: Services) -> None:
    data = os.urandom(2 * PART + 123_457)
    ticket = ticket_for("interview.mp4", len(data))
    assert ticket["method"] == "MULTIPART" and ticket["part_size"] == PART
    assert [part["part_number"] for part in ticket["parts"]] == [1, 2, 3]

    etags = []
    for part in ticket["parts"]:
        start = (part["part_number"] - 1) * ticket["part_size"]
        sent = requests.put(part["url"], data=data[start : start + ticket["part_size"]], timeout=60)
        assert sent.status_code == 200, sent.text
        etags.append({"part_number": part["part_number"], "etag": sent.headers["ETag"]})

    completion = {"key": ticket["key"], "size": len(data), "upload_id": ticket["upload_id"], "parts": etags}
    status, uploaded = call("POST", "/uploads/complete", completion)
    assert status == 200, uploaded
    stored = aws.s3(aws_services.settings).get_object(Bucket=aws_services.settings.drop_bucket, Key=ticket["key"])
    assert stored["ContentType"] == "video/mp4"
    assert hashlib.sha256(stored["Body"].read()).digest() == hashlib.sha256(data).digest()
    assert uploaded["size"] == len(data)


def test_a_multipart_upload_missing_a_part_is_not_joined_and_can_be_aborted(aws_services: Services) -> None:
    data = os.urandom(2 * PART + 10)
    ticket = ticket_for("long-take.mov", len(data))
    first = ticket["parts"][0]
    sent = requests.put(first["url"], data=data[:PART], timeout=60)
    completion = {
        "key": ticket["key"],
        "size": len(data),
        "upload_id": ticket["upload_id"],
        "parts": [{"part_number": 1, "etag": sent.headers["ETag"]}, {"part_number": 2, "etag": '"0123"'}],
    }
    status, answer = call("POST", "/uploads/complete", completion)
    assert status == 409 and answer["error"]["code"] == "upload_incomplete"
    assert "send them again" in answer["error"]["message"]

    status, _ = call("POST", "/uploads/abort", {"key": ticket["key"], "upload_id": ticket["upload_id"]})
    assert status == 200
    s3 = aws.s3(aws_services.settings)
    assert not s3.list_multipart_uploads(Bucket=aws_services.settings.drop_bucket).get("Uploads")
    assert aws_services.blobs.head(f"s3://{aws_services.settings.drop_bucket}/{ticket['key']}") is None


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "setup.exe", "size": 10}, 415, "unsupported_file_type"),
        ({"name": "huge.mp4", "size": 65 * MIB}, 413, "payload_too_large"),
        ({"name": ".hidden.mp4", "size": 10}, 400, "upload_refused"),
        ({"name": "empty.mp4", "size": 0}, 400, "invalid_request"),
    ],
)
def test_files_the_pipeline_would_not_take_get_no_ticket(
    aws_services: Services, body: dict[str, Any], status: int, code: str
) -> None:
    answered, error = call("POST", "/uploads", body)
    assert (answered, error["error"]["code"]) == (status, code)


def test_completing_is_only_for_upload_keys_whose_bytes_arrived(aws_services: Services) -> None:
    status, answer = call("POST", "/uploads/complete", {"key": "incoming/other/contract.pdf", "size": 5})
    assert (status, answer["error"]["code"]) == (400, "upload_refused")
    status, answer = call("POST", "/uploads/complete", {"key": "incoming/uploads/../secret.pdf", "size": 5})
    assert status == 400
    status, answer = call("POST", "/uploads/complete", {"key": "incoming/uploads/never-sent.pdf", "size": 5})
    assert (status, answer["error"]["code"]) == (409, "upload_incomplete")
    assert "send the file" in answer["error"]["message"]


def test_a_post_with_other_bytes_than_announced_is_not_confirmed(aws_services: Services) -> None:
    ticket = ticket_for("clip.webm", 1000)
    bucket = aws_services.settings.drop_bucket
    # moto does not check POST policies (S3 does, refusing the size): put other bytes directly.
    boto3.client("s3", endpoint_url=aws_services.settings.aws_endpoint_url, region_name="eu-north-1").put_object(
        Bucket=bucket, Key=ticket["key"], Body=b"x" * 10
    )
    status, answer = call("POST", "/uploads/complete", {"key": ticket["key"], "size": 1000})
    assert status == 409 and "not the 1,000 announced" in answer["error"]["message"]


def test_parts_grow_past_the_preferred_size_only_when_s3s_part_limit_needs_it() -> None:
    assert part_size_for(20 * 1024**3, 64 * MIB) == 64 * MIB
    big = part_size_for(1024**4, 64 * MIB)  # 1 TiB: 10,000 parts of at least 105 MiB
    assert big % MIB == 0 and big * 10_000 >= 1024**4 and big > 64 * MIB


# --- the embedded profile: a PUT to medialens serve ------------------------------------------


def test_locally_the_ticket_is_a_put_to_the_server_with_the_same_rules(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, profile_override=Profile.EMBEDDED, upload_max_bytes=1000)
    server = LocalServer(settings, port=0, run_pipeline=False)
    server.start()
    try:
        host = urlsplit(server.url).netloc

        def request(method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
            connection = http.client.HTTPConnection(host, timeout=30)
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"null")

        body = json.dumps({"name": "brief.md", "size": 12, "options": {"narrate": True}}).encode()
        status, ticket = request("POST", "/api/uploads", body, {"Content-Type": "application/json"})
        assert status == 201 and ticket["method"] == "PUT" and ticket["url"] == "/upload/brief.md"
        assert ticket["headers"] == {"Content-Type": "text/markdown", "x-amz-meta-medialens-narrate": "true"}
        status, _ = request("PUT", ticket["url"], b"# Brief\nHej.", ticket["headers"])
        assert status == 201
        done = json.dumps({"key": ticket["key"], "size": 12}).encode()
        status, uploaded = request("POST", "/api/uploads/complete", done, {"Content-Type": "application/json"})
        assert status == 200
        head = server.services.blobs.head(f"s3://{settings.drop_bucket}/{ticket['key']}") if server.services else None
        assert head is not None and head.metadata == {"medialens-narrate": "true"}
        assert uploaded["asset_id"].startswith("a")

        status, error = request("PUT", "/upload/tool.exe", b"MZ", {"Content-Type": "application/octet-stream"})
        assert (status, error["error"]["code"]) == (415, "unsupported_file_type")
        status, error = request("PUT", "/upload/big.wav", b"x" * 1001, {"Content-Type": "audio/wav"})
        assert status == 413
    finally:
        server.stop()
