"""One error shape for every failure the API reports (see ``ErrorResponse``), and the mapping from
validation errors and library exceptions to HTTP statuses."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types

from medialens.api.models import ErrorDetail, ErrorResponse, FieldError
from medialens.domain.search import MAX_QUERY_CHARS

# A query over MAX_QUERY_CHARS is "too large" (413), not merely invalid: pydantic reports it as
# string_too_long on the query field, of the query string or of the JSON body.
_OVERSIZED_QUERY_LOCATIONS = {("query", "query"), ("body", "query")}


class ApiError(Exception):
    """An error with its HTTP status and stable code; routes raise these."""

    status = HTTPStatus.INTERNAL_SERVER_ERROR
    code = "internal_error"

    def __init__(
        self, message: str, *, fields: Sequence[FieldError] = (), headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = list(fields)
        self.headers = dict(headers or {})


class BadRequestError(ApiError):
    status = HTTPStatus.BAD_REQUEST
    code = "bad_request"


class InvalidAudioError(BadRequestError):
    code = "invalid_audio"


class NoSpeechError(BadRequestError):
    code = "no_speech"


class CannotSpeakError(BadRequestError):
    code = "cannot_speak"


class NotFoundError(ApiError):
    status = HTTPStatus.NOT_FOUND
    code = "not_found"


class MethodNotAllowedError(ApiError):
    status = HTTPStatus.METHOD_NOT_ALLOWED
    code = "method_not_allowed"


class ConflictError(ApiError):
    status = HTTPStatus.CONFLICT
    code = "conflict"


class PayloadTooLargeError(ApiError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "payload_too_large"


class ServiceUnavailableError(ApiError):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "service_unavailable"


def error_body(
    status: int, code: str, message: str, fields: Iterable[FieldError] = (), request_id: str | None = None
) -> dict[str, Any]:
    detail = ErrorDetail(status=status, code=code, message=message, fields=list(fields))
    return ErrorResponse(error=detail, request_id=request_id).model_dump(mode="json")


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    fields: Iterable[FieldError] = (),
    request_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response[str]:
    body = json.dumps(error_body(status, code, message, fields, request_id))
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=dict(headers or {})
    )


def api_error_response(error: ApiError, request_id: str | None) -> Response[str]:
    return error_response(
        error.status, error.code, error.message, fields=error.fields, request_id=request_id, headers=error.headers
    )


def field_errors(errors: Sequence[Any]) -> list[FieldError]:
    """Pydantic error dicts as ``FieldError``s: location, dotted field name, message, type.

    Messages are pydantic's own sentences ("Input should be less than or equal to 100"); the
    offending input is not echoed back."""
    fields: list[FieldError] = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        where = location[0] if location else "body"
        # A JSON decode error is located at a character offset: not a field.
        names = [part for part in location[1:] if not part.isdigit() or error.get("type") != "json_invalid"]
        fields.append(
            FieldError(
                location=where, field=".".join(names), message=str(error.get("msg", "")), type=str(error.get("type"))
            )
        )
    return fields


def validation_error_response(errors: Sequence[Any], request_id: str | None) -> Response[str]:
    """400 with every field error, or 413 when the query is longer than the API accepts."""
    fields = field_errors(errors)
    if any(
        error.get("type") == "string_too_long"
        and tuple(str(p) for p in error.get("loc", ())[:2]) in _OVERSIZED_QUERY_LOCATIONS
        for error in errors
    ):
        return error_response(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            "query_too_long",
            f"the query is longer than {MAX_QUERY_CHARS} characters",
            fields=[f for f in fields if f.type == "string_too_long"],
            request_id=request_id,
        )
    if any(f.type == "json_invalid" for f in fields):
        return error_response(
            HTTPStatus.BAD_REQUEST, "invalid_json", "the request body is not valid JSON", request_id=request_id
        )
    return error_response(
        HTTPStatus.BAD_REQUEST,
        "invalid_request",
        "the request has invalid fields",
        fields=fields,
        request_id=request_id,
    )
