"""What is refused before routing: requests no route should see, answered in the one error shape.

Powertools' resolver would match ``/assets/<newline>`` as ``/assets`` (a regex ``$`` matches
before a final newline) and turns a body it cannot decode (not JSON, not UTF-8, nested past
Python's recursion limit) into an unhandled error; these checks make each of them a 4xx.
"""

from __future__ import annotations

import base64
import binascii
import json
from http import HTTPStatus
from typing import Any

from medialens.api.errors import error_body
from medialens.voice import VOICE_CONTENT_TYPES

MAX_JSON_DEPTH = 32  # the deepest request body the API defines nests 3 levels
AUDIO_BODY_PATH = "/search/voice"  # the one route whose body is not JSON: a recording
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _answer(event: dict[str, Any], status: int, code: str, message: str) -> dict[str, Any]:
    request_id = (event.get("requestContext") or {}).get("requestId")
    body = error_body(status, code, message, request_id=request_id)
    headers = {"Content-Type": "application/json"}
    return {
        "statusCode": status,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def _depth_exceeds(text: str, limit: int) -> bool:
    """Whether JSON text nests arrays and objects deeper than ``limit`` (strings skipped)."""
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def refusal(event: dict[str, Any]) -> dict[str, Any] | None:
    """A 4xx proxy response for a request that must not reach the routes, else None."""
    path = str(event.get("path") or "")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
        return _answer(event, HTTPStatus.NOT_FOUND, "not_found", "no route: the path holds control characters")
    method = str(event.get("httpMethod") or "").upper()
    raw = event.get("body")
    if method not in _BODY_METHODS or not raw:
        return None
    headers = {str(name).lower(): str(value) for name, value in (event.get("headers") or {}).items()}
    media_type = headers.get("content-type", "application/json").split(";", 1)[0].strip().lower()
    if path.rstrip("/").endswith(AUDIO_BODY_PATH):
        if media_type in VOICE_CONTENT_TYPES:
            return None  # the route decodes the recording and says what is wrong with it
        return _answer(
            event,
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            f"the body must be a recording ({', '.join(sorted(VOICE_CONTENT_TYPES))}), not {media_type or 'untyped'}",
        )
    if media_type != "application/json":
        return _answer(
            event,
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            f"the body must be application/json, not {media_type or 'an unnamed type'}",
        )
    try:
        text = base64.b64decode(raw, validate=True).decode("utf-8") if event.get("isBase64Encoded") else str(raw)
    except (binascii.Error, UnicodeDecodeError):
        return _answer(event, HTTPStatus.BAD_REQUEST, "invalid_body", "the body is not UTF-8 encoded JSON")
    if _depth_exceeds(text, MAX_JSON_DEPTH):
        return _answer(
            event, HTTPStatus.BAD_REQUEST, "invalid_body", f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels"
        )
    try:
        json.loads(text)
    except ValueError as error:
        return _answer(event, HTTPStatus.BAD_REQUEST, "invalid_body", f"the body is not valid JSON: {error}")
    return None
