"""The API's routes. Each one parses (Powertools validates against the pydantic models), calls
the library and presents the result; the logic lives in ``medialens.operations`` and
``medialens.search``."""

from __future__ import annotations

import base64
import inspect
from collections.abc import Callable, Mapping
from datetime import timedelta
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.metrics import MetricUnit

from medialens import operations, voice
from medialens.api.errors import (
    BadRequestError,
    CannotSpeakError,
    InvalidAudioError,
    NoSpeechError,
    PayloadTooLargeError,
)
from medialens.api.keyframes import KeyframeThumbnails
from medialens.api.links import links_for
from medialens.api.models import (
    MAX_FILTER_VALUES,
    MAX_PAGE_SIZE,
    AssetDetail,
    AssetId,
    AssetPage,
    DeleteResult,
    ErrorDetail,
    ErrorResponse,
    FieldError,
    HealthCheck,
    HealthReport,
    HeardView,
    LanguageCode,
    ReprocessResult,
    SearchFiltersBody,
    SearchPage,
    SearchRequest,
    SpeechRequest,
    VoiceSearchPage,
)
from medialens.api.presenters import asset_detail, asset_summary, search_page
from medialens.domain.assets import AssetStatus, MediaType, utcnow
from medialens.domain.moments import Modality
from medialens.domain.search import MAX_QUERY_CHARS, SearchMode
from medialens.errors import ConfigurationError, InvalidMediaError
from medialens.insight.report import OperationsReport, build_report
from medialens.observability import emit
from medialens.services import get_services
from medialens.settings import get_settings
from medialens.timeline import AssetTimeline, asset_timeline
from medialens.uploads.base import UploadAbort, UploadCompletion, UploadedObject, UploadRequest, UploadTicket
from medialens.uploads.desk import upload_desk

router = Router()  # type: ignore[no-untyped-call]

MAX_ASSET_PAGE = 500
MAX_LISTED_MOMENTS = 1000
ASSET_ID = Annotated[str, Path(min_length=1, max_length=128, description="The asset's id.")]

_ERROR_DESCRIPTIONS = {
    400: "Invalid input: the fields that failed and why (for audio: what is wrong with it)",
    404: "No such asset",
    409: "The asset's state does not allow this now (uploads: the bytes did not all arrive)",
    413: f"The query is longer than {MAX_QUERY_CHARS} characters (audio: larger than the limit)",
    415: "The body (uploads: the announced file) is not in a format this route takes",
    503: "A dependency (index, registry, orchestration) is unavailable; retry later",
}


def _responses(status: int, model: type[Any], description: str, *errors: int) -> dict[int, Any]:
    """OpenAPI responses of a route: its success model and the shared error shape."""
    documented: dict[int, Any] = {
        status: {"description": description, "content": {"application/json": {"model": model}}}
    }
    for code in (*errors, 500):
        documented[code] = {
            "description": _ERROR_DESCRIPTIONS.get(code, "Unexpected error"),
            "content": {"application/json": {"model": ErrorResponse}},
        }
    return documented


def _run_search(request: SearchRequest) -> SearchPage:
    services = get_services()
    links = links_for(services)
    page = search_page(services.search, request, links, KeyframeThumbnails(services, links))
    emit(f"Search_{request.mode.value}", MetricUnit.Count, 1)
    emit("SearchLatency", MetricUnit.Milliseconds, page.took_ms)
    return page


@router.get(
    "/search",
    summary="Find moments (query string)",
    description="Keyword (BM25), semantic (k-NN) or hybrid search over every indexed moment. "
    "Repeat media_type, modality or asset_id to allow several values. Pages: pass next_cursor "
    "back with the same parameters.",
    tags=["search"],
    responses=_responses(200, SearchPage, "One page of hits, best first", 400, 413, 503),
)
def search_get(
    query: Annotated[
        str,
        Query(
            min_length=1,
            max_length=MAX_QUERY_CHARS,
            pattern=r"\S",
            description=f"What was said or shown (at most {MAX_QUERY_CHARS} characters, else 413).",
        ),
    ],
    mode: Annotated[SearchMode, Query(description="keyword, semantic or hybrid.")] = SearchMode.HYBRID,
    media_type: Annotated[
        list[MediaType] | None, Query(max_length=MAX_FILTER_VALUES, description="Only these media types.")
    ] = None,
    modality: Annotated[
        list[Modality] | None, Query(max_length=MAX_FILTER_VALUES, description="Only these modalities.")
    ] = None,
    asset_id: Annotated[
        list[AssetId] | None, Query(max_length=MAX_FILTER_VALUES, description="Only moments of these assets.")
    ] = None,
    language: Annotated[
        list[LanguageCode] | None,
        Query(max_length=MAX_FILTER_VALUES, description="Only moments said or written in these languages (sv, en)."),
    ] = None,
    k: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Hits per page.")] = 10,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
) -> SearchPage:
    request = SearchRequest(
        query=query,
        mode=mode,
        k=k,
        filters=SearchFiltersBody(media_types=media_type, modalities=modality, asset_ids=asset_id, languages=language),
        cursor=cursor,
    )
    return _run_search(request)


@router.post(
    "/search",
    summary="Find moments (JSON body)",
    description="The same search as GET /search, for clients that prefer a JSON body.",
    tags=["search"],
    responses=_responses(200, SearchPage, "One page of hits, best first", 400, 413, 503),
)
def search_post(request: SearchRequest) -> SearchPage:
    return _run_search(request)


@router.post(
    "/search/voice",
    summary="Find moments by asking out loud",
    description="The body is a recording of the question (audio/wav, audio/mpeg, audio/webm with Opus as "
    "browsers record it, audio/ogg, audio/mp4, audio/flac; at most 5 MiB and 30 s). It is transcribed "
    "(the answer says what was heard, in which language) and searched like GET /search.",
    tags=["search", "voice"],
    responses=_responses(200, VoiceSearchPage, "What was heard, and one page of hits", 400, 413, 415, 503),
)
def search_voice(
    mode: Annotated[SearchMode, Query(description="keyword, semantic or hybrid.")] = SearchMode.HYBRID,
    media_type: Annotated[
        list[MediaType] | None, Query(max_length=MAX_FILTER_VALUES, description="Only these media types.")
    ] = None,
    k: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Hits per page.")] = 10,
    language: Annotated[
        str | None,
        Query(max_length=16, pattern=r"^[A-Za-z]{2,3}$", description="The question's language (default: detect)."),
    ] = None,
) -> VoiceSearchPage:
    event = router.current_event
    suffix = _AUDIO_SUFFIXES.get(_media_type(event.headers), ".bin")
    try:
        heard = voice.hear(get_settings(), _raw_body(event), suffix=suffix, language=language)
    except voice.AudioTooLargeError as error:
        raise PayloadTooLargeError(str(error)) from error
    except InvalidMediaError as error:
        raise InvalidAudioError(str(error)) from error
    if not heard.text:
        raise NoSpeechError("no speech was heard in the recording")
    request = SearchRequest(
        query=heard.text[:MAX_QUERY_CHARS],
        mode=mode,
        k=k,
        filters=SearchFiltersBody(media_types=media_type),
    )
    page = _run_search(request)
    return VoiceSearchPage(**page.model_dump(), heard=HeardView(**heard.model_dump()))


def speech(request: SpeechRequest) -> Response[bytes]:
    settings = get_settings()
    try:
        data = b"".join(voice.speak(settings, request.text, request.language, request.format))
    except (InvalidMediaError, ConfigurationError) as error:
        raise CannotSpeakError(str(error)) from error
    if request.format == "wav":
        data = voice.finished_wav(data)
    return Response(status_code=HTTPStatus.OK, content_type=voice.SPEECH_CONTENT_TYPES[request.format], body=data)


def _without_return_annotation(route: Callable[..., Any]) -> Callable[..., Any]:
    """The route as Powertools should see it: with a return annotation it validates and serialises
    the answer as that type, and would turn audio bytes into text."""

    def unannotated(*args: Any, **kwargs: Any) -> Any:
        return route(*args, **kwargs)

    unannotated.__name__ = route.__name__
    unannotated.__doc__ = route.__doc__
    unannotated.__signature__ = inspect.signature(route).replace(  # type: ignore[attr-defined]
        return_annotation=inspect.Signature.empty
    )
    return unannotated


_speech_route = router.post(
    "/speech",
    summary="Say a text (text-to-speech)",
    description="The text spoken by the narration voice (Piper; espeak-ng's voices for languages it does not "
    "speak) as MP3 or WAV. `medialens serve` streams it sentence by sentence; on AWS the whole audio "
    "comes back at once (send Accept: audio/mpeg or audio/wav).",
    tags=["voice"],
    responses={
        200: {
            "description": "The audio",
            "content": {"audio/mpeg": {"schema": {"type": "string", "format": "binary"}}, "audio/wav": {}},
        },
        **{code: value for code, value in _responses(200, ErrorResponse, "", 400, 503).items() if code != 200},
    },
)
_speech_route(_without_return_annotation(speech))


_AUDIO_SUFFIXES = {
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/wave": ".wav",
    "audio/mpeg": ".mp3",
    "audio/mp3": ".mp3",
    "audio/webm": ".webm",
    "audio/ogg": ".ogg",
    "audio/mp4": ".m4a",
    "audio/x-m4a": ".m4a",
    "audio/flac": ".flac",
}


def _media_type(headers: Mapping[str, str]) -> str:
    value = next((v for name, v in headers.items() if name.lower() == "content-type"), "")
    return value.split(";", 1)[0].strip().lower()


def _raw_body(event: Any) -> bytes:
    body = event.body or ""
    return base64.b64decode(body) if event.is_base64_encoded else str(body).encode("latin-1", "replace")


@router.get(
    "/assets",
    summary="List assets with their status",
    description="Oldest first. Failed assets carry the reason a person can act on.",
    tags=["assets"],
    responses=_responses(200, AssetPage, "One page of assets", 400),
)
def list_assets(
    status: Annotated[AssetStatus | None, Query(description="Only assets in this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ASSET_PAGE, description="Assets per page.")] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
) -> AssetPage:
    services = get_services()
    try:
        assets, next_cursor = services.registry.list_assets(status=status, limit=limit, cursor=cursor)
    except ValueError as error:  # the registry could not decode the cursor
        raise BadRequestError(
            "invalid cursor",
            fields=[FieldError(location="query", field="cursor", message=str(error), type="invalid_cursor")],
        ) from error
    links = links_for(services)
    now = utcnow()
    unfinished = any(not asset.status.terminal for asset in assets)
    alive = services.runner_alive() if unfinished and services.runner_alive is not None else None
    summaries = [asset_summary(asset, links, operations.stall_reason(services, asset, now, alive)) for asset in assets]
    return AssetPage(assets=summaries, next_cursor=next_cursor)


@router.get(
    "/assets/<asset_id>",
    summary="One asset: status, metadata, artifacts and moments",
    tags=["assets"],
    responses=_responses(200, AssetDetail, "The asset", 400, 404),
)
def get_asset(
    asset_id: ASSET_ID,
    moments_limit: Annotated[
        int, Query(ge=0, le=MAX_LISTED_MOMENTS, description="At most this many moments in the answer.")
    ] = 200,
) -> AssetDetail:
    services = get_services()
    asset = operations.existing_asset(services, asset_id)
    moments = services.index.asset_moments(asset_id, moments_limit) if moments_limit else []
    return asset_detail(
        asset,
        links_for(services),
        events=services.registry.events(asset_id),
        moments=moments,
        moments_indexed=services.index.count(asset_id),
        stalled=operations.stall_reason(services, asset, utcnow()),
    )


@router.get(
    "/assets/<asset_id>/timeline",
    summary="One asset on a time axis: words, segments, shots, keyframes, on-screen text, lanes",
    description="What the asset view draws, from the artifacts its steps made: the transcript word by word "
    "(with times, to seek a player), shots and keyframes (thumbnail URLs), text read on screen, and lanes "
    "such as languages. Parts an asset has not (yet) got are empty lists.",
    tags=["assets"],
    responses=_responses(200, AssetTimeline, "The timeline", 400, 404),
)
def get_asset_timeline(asset_id: ASSET_ID) -> AssetTimeline:
    services = get_services()
    return asset_timeline(services, operations.existing_asset(services, asset_id), links_for(services).url)


@router.post(
    "/assets/<asset_id>/reprocess",
    summary="Analyse an asset again",
    description="Resets a finished asset to QUEUED and starts a new execution of the current pipeline "
    "(its name ends in -r<attempt>). 409 while the asset is still being analysed.",
    tags=["assets"],
    status_code=202,
    responses=_responses(202, ReprocessResult, "The new run was started", 400, 404, 409, 503),
)
def reprocess_asset(asset_id: ASSET_ID) -> ReprocessResult:
    result = operations.reprocess(get_services(), asset_id)
    assert result.asset.execution_name is not None
    return ReprocessResult(
        asset_id=asset_id,
        status=result.asset.status,
        execution_name=result.asset.execution_name,
        attempt=result.attempt,
    )


@router.delete(
    "/assets/<asset_id>",
    summary="Delete an asset",
    description="Removes its moments from the index, its derived artifacts and its registry entry; "
    "the source object stays. 409 while the asset is still being analysed.",
    tags=["assets"],
    responses=_responses(200, DeleteResult, "What was removed", 400, 404, 409, 503),
)
def delete_asset(asset_id: ASSET_ID) -> DeleteResult:
    deleted = operations.delete_asset(get_services(), asset_id)
    return DeleteResult(
        asset_id=deleted.asset_id, moments_removed=deleted.moments_removed, artifacts_removed=deleted.artifacts_removed
    )


@router.post(
    "/uploads",
    summary="Ask where to send a file",
    description="Announce a file (name, exact size, options); the answer says where and how to send its bytes: "
    "PUT to `medialens serve` locally; on AWS a presigned POST straight to the drop bucket, or, from "
    "`upload_multipart_bytes` on, presigned part URLs (multipart). Only kinds of file medialens analyses "
    "(415 otherwise) and at most `upload_max_bytes` (413). Finish with POST /uploads/complete.",
    tags=["uploads"],
    status_code=201,
    responses=_responses(201, UploadTicket, "Where and how to send the bytes", 400, 413, 415, 503),
)
def open_upload(request: UploadRequest) -> UploadTicket:
    return upload_desk(get_services()).open(request)


@router.post(
    "/uploads/complete",
    summary="Confirm an upload (and join its parts)",
    description="After the bytes were sent: joins a multipart upload's parts (pass each part's ETag), checks "
    "the object holds the announced size and names the asset it becomes. The pipeline admits it on its own.",
    tags=["uploads"],
    responses=_responses(200, UploadedObject, "The file arrived", 400, 409, 503),
)
def complete_upload(completion: UploadCompletion) -> UploadedObject:
    return upload_desk(get_services()).complete(completion)


@router.post(
    "/uploads/abort",
    summary="Give up a multipart upload",
    description="Frees the parts sent so far (the drop bucket's lifecycle rule also removes forgotten ones).",
    tags=["uploads"],
    responses=_responses(200, UploadAbort, "The upload was abandoned", 400, 503),
)
def abort_upload(abort: UploadAbort) -> UploadAbort:
    upload_desk(get_services()).abort(abort)
    return abort


@router.get(
    "/operations/report",
    summary="Operations figures: throughput, latency, model errors and confidence, drift, cost",
    description="What `medialens report --json` prints, for the assets created in the last `since_hours` hours: "
    "throughput, latency percentiles per stage and end to end, failed calls per stage, confidence histograms "
    "per model with the reference window's, drift scores and alarms, and cost per item.",
    tags=["operations"],
    responses=_responses(200, OperationsReport, "The figures", 400, 503),
)
def operations_report(
    since_hours: Annotated[
        float, Query(gt=0, le=24 * 366, description="How far back, in hours (default: a day).")
    ] = 24.0,
) -> OperationsReport:
    until = utcnow()
    return build_report(get_services().registry.iter_all(), until - timedelta(hours=since_hours), until)


@router.get(
    "/health",
    summary="Dependencies: index, registry, query embedding model",
    tags=["health"],
    responses={
        200: {"description": "Everything reachable", "content": {"application/json": {"model": HealthReport}}},
        503: {"description": "Something is not", "content": {"application/json": {"model": HealthReport}}},
    },
)
def health() -> Response[str]:
    checks = operations.check_health(get_services())
    failed = [name for name, check in checks.items() if not check.ok]
    report = HealthReport(
        status="unhealthy" if failed else "ok",
        checks={name: HealthCheck(ok=c.ok, detail=c.detail, ms=c.ms) for name, c in checks.items()},
        error=(
            ErrorDetail(status=503, code="unhealthy", message=f"unavailable: {', '.join(failed)}") if failed else None
        ),
    )
    return Response(
        status_code=HTTPStatus.SERVICE_UNAVAILABLE if failed else HTTPStatus.OK,
        content_type=content_types.APPLICATION_JSON,
        body=report.model_dump_json(),
    )
