"""The search API's resolver: API Gateway (REST, Lambda proxy) calls it on AWS, and
``medialens serve`` calls the very same object with the events it builds from local requests.

Every failure leaves as an ``ErrorResponse``: validation errors as 400 with their fields (413
for an oversized query), library exceptions mapped here to 404/409/503, anything unexpected as
a 500 that names no internals.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from functools import cache
from http import HTTPStatus
from importlib import resources
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from medialens import __version__
from medialens.api import routes
from medialens.api.errors import (
    ApiError,
    MethodNotAllowedError,
    api_error_response,
    error_response,
    validation_error_response,
)
from medialens.api.models import FieldError
from medialens.api.paging import InvalidCursorError
from medialens.errors import TransientError
from medialens.observability import get_logger
from medialens.operations import AssetBusyError, AssetNotFoundError, SourceUnavailableError
from medialens.settings import get_settings
from medialens.uploads.exceptions import (
    UnsupportedUploadError,
    UploadIncompleteError,
    UploadRefusedError,
    UploadTooLargeError,
)

logger = get_logger("medialens-api")

TITLE = "medialens API"
DESCRIPTION = (
    "Find the moment where something is said or shown: keyword, semantic and hybrid search over "
    "the moments of every analysed asset, and the assets themselves with their status, artifacts "
    "and moments. Errors always have the ErrorResponse shape."
)
RETRY_AFTER_S = "2"


def _cors() -> CORSConfig | None:
    origin = get_settings().api_cors_origin
    return CORSConfig(allow_origin=origin, max_age=600) if origin else None


def _request_id() -> str | None:
    try:
        return current_app().current_event.request_context.request_id
    except (AttributeError, KeyError, TypeError):
        return None


def _invalid(error: RequestValidationError) -> Response[str]:
    return validation_error_response(error.errors(), _request_id())


def _api_error(error: ApiError) -> Response[str]:
    return api_error_response(error, _request_id())


def _no_asset(error: AssetNotFoundError) -> Response[str]:
    return error_response(HTTPStatus.NOT_FOUND, "asset_not_found", str(error), request_id=_request_id())


def _busy(error: AssetBusyError) -> Response[str]:
    return error_response(HTTPStatus.CONFLICT, "asset_busy", str(error), request_id=_request_id())


def _source_gone(error: SourceUnavailableError) -> Response[str]:
    return error_response(HTTPStatus.CONFLICT, "source_unavailable", str(error), request_id=_request_id())


def _bad_cursor(error: InvalidCursorError) -> Response[str]:
    field = FieldError(location="query", field="cursor", message=str(error), type="invalid_cursor")
    return error_response(
        HTTPStatus.BAD_REQUEST, "invalid_cursor", str(error), fields=[field], request_id=_request_id()
    )


def _upload_refused(error: UploadRefusedError) -> Response[str]:
    if isinstance(error, UnsupportedUploadError):
        return error_response(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_file_type", str(error), request_id=_request_id()
        )
    return error_response(HTTPStatus.BAD_REQUEST, "upload_refused", str(error), request_id=_request_id())


def _upload_too_large(error: UploadTooLargeError) -> Response[str]:
    return error_response(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload_too_large", str(error), request_id=_request_id()
    )


def _upload_incomplete(error: UploadIncompleteError) -> Response[str]:
    return error_response(HTTPStatus.CONFLICT, "upload_incomplete", str(error), request_id=_request_id())


def _transient(error: TransientError) -> Response[str]:
    logger.warning("dependency unavailable", extra={"reason": error.reason})
    return error_response(
        HTTPStatus.SERVICE_UNAVAILABLE,
        "service_unavailable",
        error.reason,
        request_id=_request_id(),
        headers={"Retry-After": RETRY_AFTER_S},
    )


def _not_found(_: RouteNotFoundError) -> Response[str]:
    event = current_app().current_event
    allowed = allowed_methods(event.path)
    # A path the documented routes accept with another method is a 405; one whose parameter holds
    # characters the resolver's routes do not (an id no asset has) is simply not found.
    if allowed and event.http_method not in allowed:
        error = MethodNotAllowedError(
            f"{event.http_method} is not allowed on {event.path}", headers={"Allow": ", ".join(allowed)}
        )
        return api_error_response(error, _request_id())
    return error_response(
        HTTPStatus.NOT_FOUND, "not_found", f"no route {event.http_method} {event.path}", request_id=_request_id()
    )


def _unexpected(error: Exception) -> Response[str]:
    logger.exception("unhandled error in the API")
    return error_response(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        "internal_error",
        "unexpected error; the request id locates it in the logs",
        request_id=_request_id(),
    )


class ThreadSafeResolver(APIGatewayRestResolver):
    """Powertools keeps the event being resolved on its ``BaseRouter`` class, one slot shared by
    every resolver in the process: two threads resolving at once would read each other's query.
    Here the event is kept per thread (and routers read it through their resolver)."""

    _resolving = threading.local()

    @property  # type: ignore[override]
    def current_event(self) -> BaseProxyEvent:
        event: BaseProxyEvent = self._resolving.event
        return event

    @current_event.setter
    def current_event(self, value: BaseProxyEvent) -> None:
        self._resolving.event = value

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        self.current_event = self._to_proxy_event(dict(event))
        return super().resolve(event, context)


def build_app() -> APIGatewayRestResolver:
    """A resolver with every route and the error mapping. It keeps per-request state (the route,
    its arguments) on itself, so one serves one request at a time: a Lambda environment has one
    thread; a server with several takes one per thread (``current_app``)."""
    resolver = ThreadSafeResolver(enable_validation=True, cors=_cors())
    resolver.include_router(routes.router)
    # Registered through the manager rather than as decorators: same effect, typed signature.
    resolver.exception_handler_manager.update_exception_handlers(
        {
            RequestValidationError: _invalid,
            ApiError: _api_error,
            AssetNotFoundError: _no_asset,
            AssetBusyError: _busy,
            SourceUnavailableError: _source_gone,
            InvalidCursorError: _bad_cursor,
            UploadRefusedError: _upload_refused,
            UploadTooLargeError: _upload_too_large,
            UploadIncompleteError: _upload_incomplete,
            TransientError: _transient,
            RouteNotFoundError: _not_found,
            Exception: _unexpected,
        }
    )
    # The API describes itself: its OpenAPI document and Swagger UI, whose assets come from the
    # Powertools package (no CDN, so the page works offline and behind the same auth).
    resolver.get("/openapi.json", include_in_schema=False)(_openapi_json)
    resolver.get("/docs", include_in_schema=False)(_docs)
    resolver.get("/docs/<name>", include_in_schema=False)(_docs_asset)
    return resolver


SWAGGER_UI_PACKAGE = "aws_lambda_powertools.event_handler.openapi.swagger_ui"
SWAGGER_UI_ASSETS = {
    "swagger-ui-bundle.min.js": "application/javascript; charset=utf-8",
    "swagger-ui.min.css": "text/css; charset=utf-8",
}


def _openapi_json() -> Response[str]:
    return Response(
        status_code=HTTPStatus.OK, content_type="application/json", body=json.dumps(openapi_document(), indent=1)
    )


def _docs() -> Response[str]:
    """Swagger UI over the API's own document. Relative asset URLs and the document's relative
    server (".") make it work wherever the API is mounted: /api locally, the stage on AWS."""
    event = current_app().current_event
    if (event.query_string_parameters or {}).get("format") == "json":
        return _openapi_json()
    spec = json.dumps(openapi_document()).replace("</", "<\\/")  # no "</script>" inside the page
    html = generate_swagger_html(
        spec,
        swagger_js="docs/swagger-ui-bundle.min.js",
        swagger_css="docs/swagger-ui.min.css",
        swagger_base_url="docs",
        oauth2_config=None,
    )
    # No favicon request (a 404 in every browser console): the page names an empty one.
    html = html.replace("<head>", '<head>\n    <link rel="icon" href="data:,">', 1)
    return Response(status_code=HTTPStatus.OK, content_type="text/html; charset=utf-8", body=html)


def _docs_asset(name: str) -> Response[str]:
    if name not in SWAGGER_UI_ASSETS:
        raise RouteNotFoundError(f"no such file: docs/{name}")
    body = (resources.files(SWAGGER_UI_PACKAGE) / name).read_text(encoding="utf-8")
    return Response(
        status_code=HTTPStatus.OK,
        content_type=SWAGGER_UI_ASSETS[name],
        body=body,
        headers={"Cache-Control": "public, max-age=86400"},
    )


_per_thread = threading.local()


def current_app() -> APIGatewayRestResolver:
    """This thread's resolver (built on first use)."""
    resolver: APIGatewayRestResolver | None = getattr(_per_thread, "app", None)
    if resolver is None:
        resolver = _per_thread.app = build_app()
    return resolver


app = current_app()  # the importing thread's: Lambda's only one, and the OpenAPI document's source


@cache
def _route_table() -> list[tuple[re.Pattern[str], list[str], str]]:
    """(path regex, methods, documented path) of every documented route, from the OpenAPI paths."""
    table = []
    for path, operations in openapi_document()["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$")
        table.append((pattern, sorted(method.upper() for method in operations), path))
    return table


def route_of(path: str) -> str:
    """The documented route a request path matches (``/assets/{asset_id}``), for metrics; other
    paths (the docs, unknown routes) are "other", so a metric's dimension values stay few."""
    return next((route for pattern, _, route in _route_table() if pattern.match(path)), "other")


def allowed_methods(path: str) -> list[str]:
    for pattern, methods, _ in _route_table():
        if pattern.match(path):
            return methods
    return []


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI 3 document, as committed in docs/openapi.json.

    Powertools documents a 422 "Validation Error" on every validated route; this API answers
    validation errors with 400 and the ErrorResponse shape instead, so those entries (and their
    schemas) are dropped.
    """
    document: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(
            title=TITLE,
            version=__version__,
            description=DESCRIPTION,
            tags=["search", "assets", "uploads", "operations", "health"],
        )
    )
    # Relative to where the document is served (/api/openapi.json locally, /<stage>/openapi.json on
    # AWS): clients and Swagger UI call the API beside it.
    document["servers"] = [{"url": ".", "description": "this API: where this document is served"}]
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
            if "tags" in operation:  # Powertools keeps a route's tags in a set: fix their order
                operation["tags"] = sorted(operation["tags"])
    schemas = document.get("components", {}).get("schemas", {})
    text = json.dumps(document["paths"]) + json.dumps({k: v for k, v in schemas.items() if "ValidationError" not in k})
    for name in [name for name in schemas if "ValidationError" in name]:
        if f'"#/components/schemas/{name}"' not in text:
            schemas.pop(name, None)
    return document
