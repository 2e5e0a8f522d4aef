"""Opaque search cursors: the rank the next page starts at, bound to the search it came from."""

from __future__ import annotations

import base64
import hashlib
import json

from medialens.api.models import SearchRequest


class InvalidCursorError(ValueError):
    pass


def fingerprint(request: SearchRequest) -> str:
    """What must stay the same between pages: the query, mode, filters and page size."""
    identity = request.model_dump(mode="json", exclude={"cursor"})
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def encode_cursor(offset: int, request: SearchRequest) -> str:
    payload = json.dumps({"o": offset, "f": fingerprint(request)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, request: SearchRequest) -> int:
    """The offset a cursor carries; it must come from this same search."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        offset, owner = payload["o"], payload["f"]
    except (ValueError, TypeError, KeyError) as error:
        raise InvalidCursorError("the cursor is not one this API issued") from error
    if not isinstance(offset, int) or offset < 0 or owner != fingerprint(request):
        raise InvalidCursorError("the cursor belongs to another search; repeat the same query, mode, filters and k")
    return offset
