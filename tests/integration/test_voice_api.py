"""The voice routes through the API resolver, as API Gateway (binary media types audio/*) calls
them on AWS: audio in and out as base64 bodies, and every bad input a 4xx in the one error shape."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import uuid
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from medialens.handlers.api import handler
from medialens.local.lambda_context import LocalLambdaContext
from medialens.media.audio.decode import load_audio
from medialens.voice import MAX_SPEECH_CHARACTERS

pytestmark = pytest.mark.integration


def binary_event(method: str, path: str, body: bytes | str | None, content_type: str, **query: str) -> dict[str, Any]:
    headers = {"Host": "abc123.execute-api.us-east-1.amazonaws.com", "Content-Type": content_type}
    encoded = isinstance(body, bytes)
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {name: [value] for name, value in query.items()} or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/v1{path}",
            "stage": "v1",
            "requestId": "req-" + uuid.uuid4().hex[:8],
            "accountId": "123456789012",
            "apiId": "abc123",
            "identity": {"sourceIp": "203.0.113.9"},
        },
        "body": base64.b64encode(body).decode() if isinstance(body, bytes) else body,
        "isBase64Encoded": encoded,
    }


def call(event: dict[str, Any]) -> dict[str, Any]:
    """Through the Lambda handler, as API Gateway calls it (the edge checks included)."""
    return handler(event, LocalLambdaContext("medialens-voice", 29, aws_request_id="lambda-1"))


def error_code(response: dict[str, Any]) -> str:
    body = json.loads(response["body"])
    assert set(body) == {"error", "request_id"}
    code: str = body["error"]["code"]
    return code


def silent_wav(seconds: float) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(np.zeros(int(seconds * 16000), dtype="<i2").tobytes())
    return buffer.getvalue()


def test_speech_answers_audio_as_a_binary_body(tmp_path: Path) -> None:
    request = json.dumps({"text": "Your flight leaves at nine. Boarding starts at half past eight.", "format": "mp3"})
    response = call(binary_event("POST", "/speech", request, "application/json"))
    assert response["statusCode"] == 200, response["body"][:300]
    assert response["isBase64Encoded"] is True
    headers = {
        **response.get("headers", {}),
        **{k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()},
    }
    assert headers["Content-Type"] == "audio/mpeg"
    path = tmp_path / "speech.mp3"
    path.write_bytes(base64.b64decode(response["body"]))
    assert 2.0 < len(load_audio(path)) / 16000 < 8.0

    wav = call(binary_event("POST", "/speech", json.dumps({"text": "Hello.", "format": "wav"}), "application/json"))
    data = base64.b64decode(wav["body"])
    with wave.open(io.BytesIO(data)) as parsed:  # a whole file: sizes filled in
        assert parsed.getframerate() == 22050 and parsed.getnframes() * 2 + 44 == len(data)


@pytest.mark.parametrize(
    ("request_body", "status", "code"),
    [
        ({"text": ""}, 400, "invalid_request"),
        ({"text": "x" * (MAX_SPEECH_CHARACTERS + 1)}, 400, "invalid_request"),
        ({"text": "Hello.", "format": "flac"}, 400, "invalid_request"),
        ({"text": "Hello.", "language": "xx"}, 400, "cannot_speak"),
        ({"text": "Hello.", "language": "en; rm -rf /"}, 400, "invalid_request"),
    ],
)
def test_speech_refuses_what_it_cannot_say(request_body: dict[str, Any], status: int, code: str) -> None:
    response = call(binary_event("POST", "/speech", json.dumps(request_body), "application/json"))
    assert response["statusCode"] == status and error_code(response) == code


def test_a_spoken_question_that_is_not_audio_or_too_big_is_a_4xx() -> None:
    cases = [
        (binary_event("POST", "/search/voice", "what is said", "text/plain"), 415, "unsupported_media_type"),
        (binary_event("POST", "/search/voice", b"RIFF\x00\x00WAVEjunk" * 8, "audio/wav"), 400, "invalid_audio"),
        (
            binary_event("POST", "/search/voice", b"\x00" * (5 * 1024 * 1024 + 1), "audio/webm"),
            413,
            "payload_too_large",
        ),
        (binary_event("POST", "/search/voice", silent_wav(2.0), "audio/wav"), 400, "no_speech"),
        (binary_event("POST", "/search/voice", silent_wav(31.0), "audio/wav"), 400, "invalid_audio"),
        (binary_event("POST", "/search/voice", b"", "audio/wav"), 400, "invalid_audio"),
        (binary_event("POST", "/search/voice", silent_wav(1.0), "audio/wav", k="0"), 400, "invalid_request"),
    ]
    for event, status, code in cases:
        response = call(event)
        assert (response["statusCode"], error_code(response)) == (status, code), event["headers"]


def test_a_spoken_question_is_heard_before_it_is_searched(tmp_path: Path) -> None:
    wav = tmp_path / "question.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), "where is the annual budget meeting"], check=True)
    response = call(binary_event("POST", "/search/voice", wav.read_bytes(), "audio/wav", mode="keyword"))
    assert response["statusCode"] == 200, response["body"][:300]
    page = json.loads(response["body"])
    assert "budget meeting" in page["heard"]["text"].lower() and page["heard"]["language"] == "en"
    assert page["query"] == page["heard"]["text"] and page["mode"] == "keyword" and page["hits"] == []
