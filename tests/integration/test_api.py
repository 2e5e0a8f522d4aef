"""The search API as API Gateway calls it: REST proxy events into the Powertools resolver (and the
Lambda handler), over real engines: SQLite registry, file blobs, LanceDB index, the packaged
MiniLM embedder. Then the same API over HTTP through ``medialens serve``'s local server.

Assets are seeded as the pipeline leaves them (registry row, source object, artifacts, moment
files, index documents with real embeddings), so every route has real data to answer from.
"""

from __future__ import annotations

import http.client
import json
import socket
import sqlite3
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from medialens.api.app import app, openapi_document
from medialens.domain.assets import Asset, AssetStatus, MediaType, SourceObject
from medialens.domain.moments import Modality, Moment
from medialens.domain.search import MAX_QUERY_CHARS
from medialens.errors import TransientError
from medialens.ids import asset_id_for, execution_name_for, moment_id_for
from medialens.local.notifications import DropNotifications
from medialens.local.server import LocalServer
from medialens.local.wiring import local_services
from medialens.services import Services, set_services
from medialens.settings import Settings

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


# --- events ---------------------------------------------------------------------------------


def rest_event(
    method: str,
    path: str,
    query: dict[str, str | list[str]] | None = None,
    body: Any = None,
    raw_body: str | None = None,
) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event as a ``/{proxy+}`` resource delivers it."""
    multi = {name: value if isinstance(value, list) else [value] for name, value in (query or {}).items()}
    headers = {"Accept": "application/json", "Host": "abc123.execute-api.us-east-1.amazonaws.com"}
    text = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
    if text is not None:
        headers["Content-Type"] = "application/json"
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": {name: values[-1] for name, values in multi.items()} or None,
        "multiValueQueryStringParameters": multi or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": "req-" + uuid.uuid4().hex[:8],
            "accountId": "123456789012",
            "apiId": "abc123",
            "identity": {"sourceIp": "203.0.113.9"},
        },
        "body": text,
        "isBase64Encoded": False,
    }


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


def call(method: str, path: str, **kwargs: Any) -> Answer:
    response = app.resolve(rest_event(method, path, **kwargs), None)
    headers = {name: values[-1] for name, values in (response.get("multiValueHeaders") or {}).items()}
    headers.update(response.get("headers") or {})
    return Answer(response["statusCode"], json.loads(response["body"]) if response["body"] else None, headers)


def assert_error(answer: Answer, status: int, code: str) -> dict[str, Any]:
    """The one error shape, with its status and code."""
    assert answer.status == status, answer.body
    assert set(answer.body) == {"error", "request_id"}
    error: dict[str, Any] = answer.body["error"]
    assert error["status"] == status and error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    assert answer.body["request_id"].startswith("req-")
    return error


# --- seeded assets --------------------------------------------------------------------------


DOCUMENT_PAGES = {
    1: "Welcome to Acme Robotics. Our core hours are 10:00 to 15:00 local time.",
    2: "Full-time employees receive 25 vacation days per calendar year; five unused days carry over.",
    3: "Expense reports must be submitted within 30 days of the purchase, with an itemised receipt.",
}
SPEECH = [
    (0.0, 4.0, "Good morning everyone and welcome to the weekly standup."),
    (4.0, 9.5, "The quarterly launch review moves to Thursday afternoon."),
    (9.5, 14.0, "Please send the budget numbers to finance by Friday."),
]


@dataclass
class Seeded:
    handbook: Asset
    standup: Asset
    broken: Asset
    running: Asset
    moments: dict[str, list[Moment]]


def _asset(
    services: Services, key: str, data: bytes, status: AssetStatus, media: MediaType | None, **fields: Any
) -> Asset:
    settings = services.settings
    info = services.blobs.put_bytes(f"s3://{settings.drop_bucket}/{settings.drop_prefix}{key}", data)
    source = SourceObject(bucket=info.bucket, key=info.key, etag=info.etag, size=info.size)
    asset_id = asset_id_for(info.bucket, info.key, info.etag)
    asset = Asset(
        asset_id=asset_id,
        source=source,
        pipeline_version=settings.pipeline_version,
        execution_name=execution_name_for(asset_id, settings.pipeline_version),
    )
    services.registry.create_if_absent(asset)

    def change(current: Asset) -> None:
        current.status = status
        current.media_type = media
        for name, value in fields.items():
            setattr(current, name, value)

    return services.registry.mutate(asset_id, change)


def _index(services: Services, asset: Asset, passages: list[dict[str, Any]], modality: Modality) -> list[Moment]:
    """What the embed and index steps leave: moment files under derived/ and index documents."""
    embedder = services.embedder
    vectors = embedder.embed([p["text"] for p in passages])
    moments = []
    for number, (passage, vector) in enumerate(zip(passages, vectors, strict=True)):
        locator = f"t{passage['start']:.3f}#{number}" if "start" in passage else f"p{passage['page']}#{number}"
        moments.append(
            Moment(
                moment_id=moment_id_for(asset.asset_id, modality.value, locator),
                asset_id=asset.asset_id,
                source=asset.source.uri,
                media_type=asset.media_type or MediaType.UNKNOWN,
                modality=modality,
                vector=[float(x) for x in vector],
                model_versions={"text_embedding": embedder.version},
                pipeline_version=asset.pipeline_version,
                **passage,
            )
        )
    uri = services.artifact_uri(asset.asset_id, "embed_text", embedder.version, "moments-0000.jsonl")
    services.blobs.put_text(uri, "".join(m.model_dump_json() + "\n" for m in moments))
    services.index.upsert(moments)
    services.registry.mutate(asset.asset_id, lambda a: setattr(a, "moment_count", len(moments)))
    return moments


def seed(services: Services) -> Seeded:
    handbook = _asset(
        services,
        "docs/handbook.pdf",
        b"%PDF-1.4 handbook",
        AssetStatus.SUCCEEDED,
        MediaType.DOCUMENT,
        metadata={"mime_type": "application/pdf", "pages": 3},
    )
    probe_uri = services.artifact_uri(handbook.asset_id, "probe", "1", "probe.json")
    services.blobs.put_text(probe_uri, json.dumps({"media_type": "document"}))
    services.registry.add_artifacts(handbook.asset_id, {"probe": probe_uri})
    handbook_moments = _index(
        services,
        handbook,
        [{"text": text, "page": page} for page, text in DOCUMENT_PAGES.items()],
        Modality.DOCUMENT,
    )
    standup = _asset(services, "meetings/standup.wav", b"RIFF....WAVEfmt ", AssetStatus.SUCCEEDED, MediaType.AUDIO)
    standup_moments = _index(
        services,
        standup,
        [{"text": text, "start": start, "end": end} for start, end, text in SPEECH],
        Modality.SPEECH,
    )
    broken = _asset(
        services,
        "docs/broken.pdf",
        b"%PDF-1.4 trunc",
        AssetStatus.FAILED,
        MediaType.DOCUMENT,
        error_code="MediaLens.InvalidMedia",
        error_reason="corrupt or truncated PDF: re-export it",
        stage="extract_document",
    )
    running = _asset(services, "talks/keynote.mp4", b"\x00\x00\x00\x18ftypmp42", AssetStatus.RUNNING, MediaType.VIDEO)
    return Seeded(
        handbook=handbook,
        standup=standup,
        broken=broken,
        running=running,
        moments={handbook.asset_id: handbook_moments, standup.asset_id: standup_moments},
    )


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    wired = local_services(settings)
    set_services(wired)
    yield wired
    set_services(None)


@pytest.fixture
def seeded(services: Services) -> Seeded:
    return seed(services)


# --- health ---------------------------------------------------------------------------------


def test_health_checks_index_registry_and_model(seeded: Seeded) -> None:
    answer = call("GET", "/health")
    assert answer.status == 200
    assert answer.body["status"] == "ok" and answer.body["error"] is None
    checks = answer.body["checks"]
    assert set(checks) == {"index", "registry", "model"}
    assert all(check["ok"] for check in checks.values())
    assert checks["index"]["detail"] == "6 moments"
    assert checks["model"]["detail"].startswith(f"{Settings().text_embedding_model}@")
    assert f"; {Settings().english_embedding_model}@" in checks["model"]["detail"]  # both query encoders load


def test_health_is_503_and_names_the_failed_dependency(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(asset_id: str | None = None) -> int:
        raise OSError("index directory unreadable")

    monkeypatch.setattr(services.index, "count", unreachable)
    answer = call("GET", "/health")
    assert answer.status == 503
    assert answer.body["status"] == "unhealthy"
    assert not answer.body["checks"]["index"]["ok"] and "unreadable" in answer.body["checks"]["index"]["detail"]
    assert answer.body["checks"]["registry"]["ok"] and answer.body["checks"]["model"]["ok"]
    assert answer.body["error"]["code"] == "unhealthy" and "index" in answer.body["error"]["message"]


# --- search ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
def test_search_finds_the_page_with_highlighted_snippet_and_links(seeded: Seeded, mode: str) -> None:
    query = "vacation days per year" if mode == "keyword" else "How much paid leave do staff get each year?"
    answer = call("GET", "/search", query={"query": query, "mode": mode, "k": "3"})
    assert answer.status == 200, answer.body
    page = answer.body
    assert page["mode"] == mode and page["offset"] == 0 and page["k"] == 3
    top = page["hits"][0]
    assert top["file_name"] == "handbook.pdf" and top["page"] == 2 and top["media_type"] == "document"
    assert top["asset_id"] == seeded.handbook.asset_id
    assert top["media_url"] == "/files/medialens-drop/incoming/docs/handbook.pdf"
    assert top["open_url"] == top["media_url"] + "#page=2"
    assert top["snippet"] == DOCUMENT_PAGES[2]
    marked = [top["snippet"][h["start"] : h["end"]] for h in top["highlights"]]
    assert "year" in marked and ("vacation" in marked if mode == "keyword" else True)
    assert all(word.lower() in ("vacation", "days", "day", "year", "per") for word in marked), marked
    scores = [hit["score"] for hit in page["hits"]]
    assert scores == sorted(scores, reverse=True)


def test_search_audio_hit_opens_at_its_start(seeded: Seeded) -> None:
    answer = call("POST", "/search", body={"query": "when is the launch review", "mode": "hybrid", "k": 1})
    assert answer.status == 200, answer.body
    (hit,) = answer.body["hits"]
    assert hit["file_name"] == "standup.wav" and hit["modality"] == "speech"
    assert (hit["start"], hit["end"]) == (4.0, 9.5)
    assert hit["open_url"] == hit["media_url"] + "#t=4.000"


def test_filters_by_media_type_modality_and_asset(seeded: Seeded) -> None:
    def files(answer: Answer) -> set[str]:
        assert answer.status == 200, answer.body
        return {hit["file_name"] for hit in answer.body["hits"]}

    common = {"query": "days review budget hours", "mode": "keyword", "k": "10"}
    assert files(call("GET", "/search", query=common)) == {"handbook.pdf", "standup.wav"}
    assert files(call("GET", "/search", query={**common, "media_type": "audio"})) == {"standup.wav"}
    # A repeated parameter allows several values.
    both = call("GET", "/search", query={**common, "media_type": ["audio", "document"]})
    assert files(both) == {"handbook.pdf", "standup.wav"}
    assert files(call("GET", "/search", query={**common, "modality": "document"})) == {"handbook.pdf"}
    by_asset = call(
        "POST",
        "/search",
        body={"query": "days review budget", "mode": "semantic", "filters": {"asset_ids": [seeded.standup.asset_id]}},
    )
    assert files(by_asset) == {"standup.wav"}
    assert files(call("GET", "/search", query={**common, "media_type": "image"})) == set()


def test_cursor_pages_follow_the_ranking(seeded: Seeded) -> None:
    # Every seeded moment holds one of these words: six keyword hits in all.
    query = {"query": "days review budget hours receipt standup", "mode": "keyword"}
    full = [hit["moment_id"] for hit in call("GET", "/search", query={**query, "k": "10"}).body["hits"]]
    assert len(full) == 6
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        answer = call("GET", "/search", query={**query, "k": "4", **({"cursor": cursor} if cursor else {})})
        assert answer.status == 200, answer.body
        assert answer.body["offset"] == sum(len(page) for page in pages)
        pages.append([hit["moment_id"] for hit in answer.body["hits"]])
        cursor = answer.body["next_cursor"]
        if cursor is None:
            break
    assert [len(page) for page in pages] == [4, 2]
    assert [moment for page in pages for moment in page] == full

    first = call("GET", "/search", query={**query, "k": "2"}).body["next_cursor"]
    elsewhere = call("GET", "/search", query={"query": "other words", "mode": "keyword", "k": "2", "cursor": first})
    assert assert_error(elsewhere, 400, "invalid_cursor")["fields"][0]["field"] == "cursor"
    other_k = call("GET", "/search", query={**query, "k": "3", "cursor": first})
    assert_error(other_k, 400, "invalid_cursor")
    assert_error(call("GET", "/search", query={**query, "k": "2", "cursor": "not-a-cursor"}), 400, "invalid_cursor")


def test_video_hits_show_the_keyframe_stored_for_their_time(services: Services) -> None:
    # Written with the video branch's own record type: a change to its format breaks this test.
    from medialens.pipeline.video import KeyframeRecord

    video = _asset(services, "talks/demo.mp4", b"\x00\x00\x00\x18ftypmp42", AssetStatus.SUCCEEDED, MediaType.VIDEO)
    folder = services.artifact_uri(video.asset_id, "detect_shots", "1")
    records = []
    for index, (time, start, until) in enumerate([(0.5, 0.0, 8.0), (9.0, 8.0, 20.0), (21.0, 20.0, 40.0)]):
        jpeg = f"{folder}/keyframes/{index:05d}-{round(time * 1000):09d}ms.jpg"
        services.blobs.put_bytes(jpeg, b"\xff\xd8\xff\xe0 a jpeg")
        records.append(
            KeyframeRecord(index=index, time=time, start=start, until=until, shot_index=index, jpeg_uri=jpeg)
        )
    services.blobs.put_text(f"{folder}/keyframes-0000.jsonl", "".join(r.model_dump_json() + "\n" for r in records))
    services.blobs.put_text(f"{folder}/keyframes.json", json.dumps({"keyframes": len(records)}))
    services.registry.add_artifacts(video.asset_id, {"keyframes": f"{folder}/keyframes.json"})
    _index(
        services,
        video,
        [
            {"text": "The roadmap slide lists the autumn launch.", "start": 12.0, "end": 18.0},
            {"text": "The pricing slide shows the premium plan.", "start": 25.0, "end": 31.0},
        ],
        Modality.SCREEN_TEXT,
    )
    answer = call("GET", "/search", query={"query": "roadmap pricing slide", "mode": "keyword", "media_type": "video"})
    assert answer.status == 200, answer.body
    thumbnails = {hit["start"]: hit["thumbnail_url"] for hit in answer.body["hits"]}
    base = f"/files/medialens-artifacts/derived/{video.asset_id}/detect_shots/1/keyframes"
    assert thumbnails == {12.0: f"{base}/00001-000009000ms.jpg", 25.0: f"{base}/00002-000021000ms.jpg"}


def test_the_timeline_of_a_video_holds_its_words_shots_keyframes_and_screen_text(services: Services) -> None:
    """Written with the steps' own models: a change to an artifact's format breaks this test."""
    from medialens.media.ocr_lines import OcrLine
    from medialens.media.screen_text import FrameText, ScreenText
    from medialens.media.transcript import Segment, Transcript, Word
    from medialens.pipeline.video import KeyframeRecord

    video = _asset(services, "talks/launch.mp4", b"\x00\x00\x00\x18ftypmp42", AssetStatus.SUCCEEDED, MediaType.VIDEO)
    folder = services.artifact_uri(video.asset_id, "detect_shots", "1")
    records = [
        KeyframeRecord(index=i, time=t, start=a, until=b, shot_index=i, jpeg_uri=f"{folder}/keyframes/{i:05d}.jpg")
        for i, (t, a, b) in enumerate([(0.5, 0.0, 6.0), (7.0, 6.0, 12.0)])
    ]
    services.blobs.put_text(f"{folder}/keyframes-0000.jsonl", "".join(r.model_dump_json() + "\n" for r in records))
    shots = [{"index": 0, "start": 0.0, "end": 6.0}, {"index": 1, "start": 6.0, "end": 12.0}]
    services.blobs.put_text(f"{folder}/keyframes.json", json.dumps({"duration_s": 12.0, "shots": shots}))
    words = [
        Word(start=1.0, end=1.4, text=" Launch", probability=0.9),
        Word(start=1.4, end=2.0, text=" day", probability=0.8),
    ]
    transcript = Transcript(
        language="sv",
        language_probability=0.97,
        duration_s=12.0,
        model_version="whisper-base@1+int8",
        segments=[Segment(start=1.0, end=2.0, text=" Launch day", avg_logprob=-0.1, no_speech_prob=0.0, words=words)],
    )
    line = OcrLine(text="ROADMAP 2027", confidence=0.98, box=((0, 0), (9, 0), (9, 9), (0, 9)))
    screen = ScreenText(
        ocr_model="ocr@1", frames=[FrameText(time=7.0, start=6.0, until=12.0, lines=[line])], passages=[]
    )
    transcript_uri = services.artifact_uri(video.asset_id, "build_speech_segments", "w", "transcript.json")
    ocr_uri = services.artifact_uri(video.asset_id, "build_screen_text", "o", "ocr.json")
    services.blobs.put_text(transcript_uri, transcript.model_dump_json())
    services.blobs.put_text(ocr_uri, screen.model_dump_json())
    services.registry.add_artifacts(
        video.asset_id,
        {"keyframes": f"{folder}/keyframes.json", "transcript_json": transcript_uri, "ocr": ocr_uri},
    )

    answer = call("GET", f"/assets/{video.asset_id}/timeline")
    assert answer.status == 200, answer.body
    timeline = answer.body
    assert (timeline["duration_s"], timeline["language"], timeline["missing"]) == (12.0, "sv", [])
    assert [(w["start"], w["text"]) for w in timeline["words"]] == [(1.0, "Launch"), (1.4, "day")]
    assert timeline["segments"][0]["text"] == "Launch day" and 0.85 < timeline["segments"][0]["confidence"] < 0.95
    assert [(s["start"], s["end"]) for s in timeline["shots"]] == [(0.0, 6.0), (6.0, 12.0)]
    base = f"/files/medialens-artifacts/derived/{video.asset_id}/detect_shots/1/keyframes"
    assert [k["thumbnail_url"] for k in timeline["keyframes"]] == [f"{base}/00000.jpg", f"{base}/00001.jpg"]
    assert timeline["screen_text"] == [{"start": 6.0, "end": 12.0, "text": "ROADMAP 2027", "confidence": 0.98}]
    assert timeline["lanes"] == [
        {"name": "languages", "spans": [{"start": 1.0, "end": 2.0, "label": "sv", "confidence": 0.97}]}
    ]

    # An unreadable artifact costs its lane, not the view; an unknown asset is a 404.
    services.blobs.put_text(transcript_uri, "{not json")
    damaged = call("GET", f"/assets/{video.asset_id}/timeline").body
    assert damaged["words"] == [] and damaged["missing"] == ["transcript_json"] and damaged["shots"]
    assert_error(call("GET", "/assets/a0000000000000000000000/timeline"), 404, "asset_not_found")


def test_operations_report_over_the_api_and_as_the_servers_page(server: LocalServer, seeded: Seeded) -> None:
    answer = call("GET", "/operations/report", query={"since_hours": "2"})
    assert answer.status == 200, answer.body
    listed = call("GET", "/assets").body["assets"]
    assert answer.body["assets"] == len(listed) == sum(answer.body["by_status"].values())
    assert {"throughput", "stages", "errors", "quality", "drift", "cost"} <= set(answer.body)
    assert_error(call("GET", "/operations/report", query={"since_hours": "0"}), 400, "invalid_request")
    status, headers, body = request(server, "GET", "/operations/report.html?since_hours=2")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in headers["content-security-policy"] and b"<script" not in body
    assert b"medialens operations: the last 2 hours" in body
    status, _, body = request(server, "GET", "/operations/report.html?since_hours=soon")
    assert status == 400 and json.loads(body)["error"]["code"] == "bad_since"
    status, headers, _ = request(server, "GET", "/operations")
    assert status == 200 and headers["content-type"].startswith("text/html")


def test_keyframe_choice_for_a_time() -> None:
    from medialens.api.keyframes import pick
    from medialens.timeline import Frame

    frames = [Frame(0.5, 0.0, 8.0, "a"), Frame(9.0, 8.0, 20.0, "b"), Frame(21.0, 20.0, 40.0, "c")]

    def chosen(candidates: list[Frame], second: float) -> str | None:
        frame = pick(candidates, second)
        return frame.uri if frame is not None else None

    assert [chosen(frames, t) for t in (0.0, 7.99, 8.0, 19.5, 20.0, 99.0)] == ["a", "a", "b", "b", "c", "c"]
    assert chosen(frames[1:], 3.0) == "b"  # before the first span: the first keyframe
    assert chosen([], 3.0) is None


@pytest.mark.parametrize(
    ("method", "kwargs", "field", "error_type"),
    [
        ("GET", {"query": {"mode": "keyword"}}, "query", "missing"),
        ("GET", {"query": {"query": "x", "k": "0"}}, "k", "greater_than_equal"),
        ("GET", {"query": {"query": "x", "k": "many"}}, "k", "int_parsing"),
        ("GET", {"query": {"query": "x", "mode": "fuzzy"}}, "mode", "enum"),
        ("GET", {"query": {"query": "x", "media_type": "hologram"}}, "media_type.0", "enum"),
        ("GET", {"query": {"query": "   "}}, "query", "string_pattern_mismatch"),
        ("POST", {"body": {"query": "x", "k": 101}}, "k", "less_than_equal"),
        ("POST", {"body": {"query": "x", "limit": 3}}, "limit", "extra_forbidden"),
        ("POST", {"body": {"query": "x", "filters": {"modalities": ["smell"]}}}, "filters.modalities.0", "enum"),
        ("POST", {"body": {"mode": "keyword"}}, "query", "missing"),
    ],
)
def test_bad_input_is_400_with_field_errors(
    services: Services, method: str, kwargs: dict[str, Any], field: str, error_type: str
) -> None:
    error = assert_error(call(method, "/search", **kwargs), 400, "invalid_request")
    assert {(f["field"], f["type"]) for f in error["fields"]} >= {(field, error_type)}, error["fields"]
    location = "query" if method == "GET" else "body"
    assert all(f["location"] == location and f["message"] for f in error["fields"])


def test_malformed_json_body_is_400(services: Services) -> None:
    error = assert_error(call("POST", "/search", raw_body='{"query": "x",'), 400, "invalid_json")
    assert error["fields"] == []


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_oversized_query_is_413(seeded: Seeded, method: str) -> None:
    longest = "budget " * (MAX_QUERY_CHARS // 7) + "x" * (MAX_QUERY_CHARS % 7)
    assert len(longest) == MAX_QUERY_CHARS
    for text, status in ((longest, 200), (longest + "y", 413)):
        params = {"query": text, "mode": "keyword"}
        answer = call("GET", "/search", query=params) if method == "GET" else call("POST", "/search", body=params)
        assert answer.status == status, answer.body
    error = assert_error(answer, 413, "query_too_long")
    assert str(MAX_QUERY_CHARS) in error["message"] and error["fields"][0]["field"] == "query"


# --- assets ---------------------------------------------------------------------------------


def test_list_assets_with_status_filter_and_cursor(seeded: Seeded) -> None:
    everything = call("GET", "/assets")
    assert everything.status == 200
    names = [a["file_name"] for a in everything.body["assets"]]
    assert names == ["handbook.pdf", "standup.wav", "broken.pdf", "keynote.mp4"]  # oldest first
    assert everything.body["next_cursor"] is None
    # No runner holds this home: the running asset says so, finished ones say nothing.
    stalled = {a["file_name"]: a["stalled"] for a in everything.body["assets"]}
    assert stalled.pop("keynote.mp4").startswith("no runner is processing this")
    assert set(stalled.values()) == {None}
    assert call("GET", f"/assets/{seeded.running.asset_id}").body["stalled"].startswith("no runner")

    failed = call("GET", "/assets", query={"status": "FAILED"}).body["assets"]
    assert [(a["file_name"], a["status"], a["error_code"]) for a in failed] == [
        ("broken.pdf", "FAILED", "MediaLens.InvalidMedia")
    ]
    assert failed[0]["error_reason"] == "corrupt or truncated PDF: re-export it"
    assert failed[0]["stage"] == "extract_document"

    walked: list[str] = []
    cursor: str | None = None
    while True:
        page = call("GET", "/assets", query={"limit": "1", **({"cursor": cursor} if cursor else {})}).body
        walked += [a["asset_id"] for a in page["assets"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == [a["asset_id"] for a in everything.body["assets"]]

    assert_error(call("GET", "/assets", query={"status": "DONE"}), 400, "invalid_request")
    assert_error(call("GET", "/assets", query={"limit": "0"}), 400, "invalid_request")
    error = assert_error(call("GET", "/assets", query={"cursor": "%%%"}), 400, "bad_request")
    assert error["fields"][0]["field"] == "cursor"


def test_asset_detail_has_metadata_artifact_links_events_and_moments(seeded: Seeded, services: Services) -> None:
    asset_id = seeded.handbook.asset_id
    answer = call("GET", f"/assets/{asset_id}")
    assert answer.status == 200, answer.body
    detail = answer.body
    assert detail["status"] == "SUCCEEDED" and detail["media_type"] == "document"
    assert detail["metadata"] == {"mime_type": "application/pdf", "pages": 3}
    assert detail["moment_count"] == 3 and detail["moments_indexed"] == 3
    assert [m["page"] for m in detail["moments"]] == [1, 2, 3]
    assert detail["moments"][1]["text"] == DOCUMENT_PAGES[2]
    (probe,) = detail["artifacts"]
    assert probe["name"] == "probe" and probe["uri"].endswith(f"/derived/{asset_id}/probe/1/probe.json")
    assert probe["url"] == f"/files/medialens-artifacts/derived/{asset_id}/probe/1/probe.json"
    assert detail["execution_name"] == execution_name_for(asset_id, services.settings.pipeline_version)
    assert detail["media_url"] == "/files/medialens-drop/incoming/docs/handbook.pdf"

    limited = call("GET", f"/assets/{asset_id}", query={"moments_limit": "1"}).body
    assert [m["page"] for m in limited["moments"]] == [1] and limited["moments_indexed"] == 3

    audio = call("GET", f"/assets/{seeded.standup.asset_id}").body
    assert [(m["start"], m["end"], m["modality"]) for m in audio["moments"]] == [
        (start, end, "speech") for start, end, _ in SPEECH
    ]

    assert_error(call("GET", "/assets/a0000000000000000000000"), 404, "asset_not_found")
    assert_error(call("GET", f"/assets/{asset_id}", query={"moments_limit": "5000"}), 400, "invalid_request")


def test_reprocess_queues_a_new_named_run_through_the_outbox(seeded: Seeded, services: Services) -> None:
    asset_id = seeded.handbook.asset_id
    outbox = DropNotifications(services.settings.home / "notifications.sqlite3")
    before = outbox.pending_count()

    answer = call("POST", f"/assets/{asset_id}/reprocess")
    assert answer.status == 202, answer.body
    version = services.settings.pipeline_version
    assert answer.body == {
        "asset_id": asset_id,
        "status": "QUEUED",
        "execution_name": execution_name_for(asset_id, version, attempt=1),
        "attempt": 1,
    }
    stored = services.registry.get(asset_id)
    assert stored is not None and stored.status is AssetStatus.QUEUED and stored.timings == []
    assert stored.execution_name == f"{asset_id}-p{version}-r1"
    # No state machine in this process: the runner is handed the object, as an upload would be.
    pending = outbox.pending()
    assert outbox.pending_count() == before + 1
    assert (pending[-1].info.bucket, pending[-1].info.key) == (stored.source.bucket, stored.source.key)
    assert [e.kind for e in services.registry.events(asset_id)][-1] == "reprocess"
    # Its moments stay searchable until the new run replaces them.
    assert services.index.count(asset_id) == 3

    busy = assert_error(call("POST", f"/assets/{asset_id}/reprocess"), 409, "asset_busy")
    assert "QUEUED" in busy["message"]

    services.registry.mark_succeeded(asset_id, moment_count=3)
    again = call("POST", f"/assets/{asset_id}/reprocess")
    assert again.status == 202 and again.body["attempt"] == 2
    assert again.body["execution_name"] == execution_name_for(asset_id, version, attempt=2)

    # A failed asset can be re-run too: its reason is cleared for the new run.
    failed = call("POST", f"/assets/{seeded.broken.asset_id}/reprocess")
    assert failed.status == 202
    broken = services.registry.get(seeded.broken.asset_id)
    assert broken is not None and broken.error_reason is None and broken.status is AssetStatus.QUEUED


def test_reprocess_refuses_gone_or_changed_sources_and_unknown_assets(seeded: Seeded, services: Services) -> None:
    services.blobs.delete_prefix(seeded.broken.source.uri)
    gone = assert_error(call("POST", f"/assets/{seeded.broken.asset_id}/reprocess"), 409, "source_unavailable")
    assert "no longer exists" in gone["message"]
    services.blobs.put_bytes(seeded.handbook.source.uri, b"%PDF-1.4 a new revision")
    changed = assert_error(call("POST", f"/assets/{seeded.handbook.asset_id}/reprocess"), 409, "source_unavailable")
    assert "separate asset" in changed["message"]
    assert_error(call("POST", "/assets/nope/reprocess"), 404, "asset_not_found")
    assert_error(call("POST", f"/assets/{seeded.running.asset_id}/reprocess"), 409, "asset_busy")


def test_reprocess_that_cannot_start_fails_the_asset_visibly(
    seeded: Seeded, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def locked(source: object) -> None:  # the outbox's database refuses the re-admission
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(services, "readmit", locked)
    answer = call("POST", f"/assets/{seeded.standup.asset_id}/reprocess")
    error = assert_error(answer, 503, "service_unavailable")
    assert "database is locked" in error["message"] and answer.headers["Retry-After"] == "2"
    stored = services.registry.get(seeded.standup.asset_id)
    assert stored is not None and stored.status is AssetStatus.FAILED
    assert stored.error_code == "MediaLens.ReprocessNotStarted" and "database is locked" in (stored.error_reason or "")


def test_delete_removes_moments_artifacts_and_the_registry_entry(seeded: Seeded, services: Services) -> None:
    asset_id = seeded.handbook.asset_id
    derived = services.artifact_uri(asset_id) + "/"
    assert len(list(services.blobs.list_objects(derived))) == 2  # probe.json and the moment file
    answer = call("DELETE", f"/assets/{asset_id}")
    assert answer.status == 200, answer.body
    assert answer.body == {"asset_id": asset_id, "moments_removed": 3, "artifacts_removed": 2}
    assert services.index.count(asset_id) == 0 and services.index.count() == 3
    assert list(services.blobs.list_objects(derived)) == []
    assert services.registry.get(asset_id) is None
    assert services.blobs.head(seeded.handbook.source.uri) is not None  # the user's file stays
    hits = call("GET", "/search", query={"query": "vacation days", "mode": "keyword"}).body["hits"]
    assert all(hit["asset_id"] != asset_id for hit in hits)
    assert_error(call("GET", f"/assets/{asset_id}"), 404, "asset_not_found")
    assert_error(call("DELETE", f"/assets/{asset_id}"), 404, "asset_not_found")
    assert_error(call("DELETE", f"/assets/{seeded.running.asset_id}"), 409, "asset_busy")
    # Other assets' artifacts are untouched by the prefix delete.
    assert services.index.count(seeded.standup.asset_id) == 3


# --- routing and failures -------------------------------------------------------------------


def test_unknown_route_is_404_and_wrong_method_405(services: Services) -> None:
    assert "no route" in assert_error(call("GET", "/nothing/here"), 404, "not_found")["message"]
    answer = call("PUT", "/assets/abc")
    assert_error(answer, 405, "method_not_allowed")
    assert answer.headers["Allow"] == "DELETE, GET"
    assert call("PATCH", "/search").headers["Allow"] == "GET, POST"
    # An id with characters no route accepts is an asset that does not exist, not a wrong method.
    assert_error(call("GET", '/assets/a"b'), 404, "not_found")


def test_unexpected_errors_are_500_without_internals(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> list[object]:
        raise RuntimeError("secret detail /srv/data/index")

    monkeypatch.setattr(services.index, "keyword", broken)
    answer = call("GET", "/search", query={"query": "x", "mode": "keyword"})
    assert_error(answer, 500, "internal_error")
    assert "secret" not in json.dumps(answer.body)


def test_transient_index_failures_are_503_with_retry_after(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    def throttled(*_: object) -> list[object]:
        raise TransientError("OpenSearch search failed after 5 attempts: HTTP 429")

    monkeypatch.setattr(services.index, "keyword", throttled)
    answer = call("GET", "/search", query={"query": "x", "mode": "keyword"})
    assert "429" in assert_error(answer, 503, "service_unavailable")["message"]
    assert answer.headers["Retry-After"] == "2"


def test_lambda_handler_serves_the_resolver(seeded: Seeded) -> None:
    from medialens.handlers.api import handler
    from medialens.local.lambda_context import LocalLambdaContext

    event = rest_event("GET", "/search", query={"query": "budget numbers", "mode": "keyword", "k": "1"})
    response = handler(event, LocalLambdaContext("medialens-api", 29, aws_request_id="lambda-1"))
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["hits"][0]["file_name"] == "standup.wav"


def test_openapi_document_is_committed_and_current() -> None:
    committed = json.loads((REPO_ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
    assert committed == openapi_document(), "docs/openapi.json drifted: run scripts/export_openapi.py"
    paths = committed["paths"]
    assert set(paths) == {
        "/search",
        "/search/voice",
        "/speech",
        "/assets",
        "/assets/{asset_id}",
        "/assets/{asset_id}/reprocess",
        "/assets/{asset_id}/timeline",
        "/uploads",
        "/uploads/complete",
        "/uploads/abort",
        "/operations/report",
        "/health",
    }
    assert set(paths["/search"]) == {"get", "post"} and set(paths["/assets/{asset_id}"]) == {"get", "delete"}
    for operations in paths.values():
        for operation in operations.values():
            assert "422" not in operation["responses"]  # validation errors are 400 here
    search_errors = paths["/search"]["get"]["responses"]
    assert {"400", "413", "500"} <= set(search_errors)
    assert search_errors["413"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")


# --- AWS profile ----------------------------------------------------------------------------


def test_aws_profile_presigns_links_and_starts_reprocess_executions(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB registry, S3 blobs and Step Functions on moto: the Lambda's own wiring."""
    from moto import mock_aws

    from medialens import aws
    from medialens.orchestration.provision import provision
    from medialens.settings import Profile, get_settings

    with mock_aws(config={"stepfunctions": {"execute_state_machine": False}}):
        get_settings.cache_clear()
        settings = get_settings().model_copy(update={"profile_override": Profile.AWS})
        aws.reset_clients()
        resources = provision(settings, storage=True)
        settings.state_machine_arn = resources.state_machine_arn
        services = Services(settings)
        set_services(services)
        standup = _asset(services, "meetings/standup.wav", b"RIFF....WAVEfmt ", AssetStatus.SUCCEEDED, MediaType.AUDIO)

        detail = call("GET", f"/assets/{standup.asset_id}").body
        url = urllib.parse.urlsplit(detail["media_url"])
        assert url.path.endswith("/incoming/meetings/standup.wav")
        params = urllib.parse.parse_qs(url.query)
        assert params["X-Amz-Expires"] == [str(settings.api_presign_seconds)] and "X-Amz-Signature" in params

        answer = call("POST", f"/assets/{standup.asset_id}/reprocess")
        assert answer.status == 202, answer.body
        name = answer.body["execution_name"]
        arn = resources.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
        execution = aws.stepfunctions(settings).describe_execution(executionArn=arn)
        assert execution["name"] == name and name.endswith("-r1")
        assert json.loads(execution["input"])["asset"]["asset_id"] == standup.asset_id
        set_services(None)
        aws.reset_clients()


# --- the same API over HTTP: medialens serve --------------------------------------------------


@pytest.fixture
def server(settings: Settings, seeded: Seeded) -> Iterator[LocalServer]:
    with LocalServer(settings, port=0, run_pipeline=False) as running:
        set_services(running.services)
        yield running


def request(
    server: LocalServer, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_local_server_answers_exactly_as_the_resolver(server: LocalServer, seeded: Seeded) -> None:
    path = "/api/search?query=launch+review&mode=keyword&k=2"
    status, headers, body = request(server, "GET", path)
    assert status == 200 and headers["content-type"] == "application/json"
    direct = call("GET", "/search", query={"query": "launch review", "mode": "keyword", "k": "2"}).body
    served = json.loads(body)
    assert served["hits"] == direct["hits"]

    payload = json.dumps({"query": "x" * (MAX_QUERY_CHARS + 1)}).encode()
    status, _, body = request(server, "POST", "/api/search", {"Content-Type": "application/json"}, payload)
    assert status == 413 and json.loads(body)["error"]["code"] == "query_too_long"
    status, _, body = request(server, "DELETE", f"/api/assets/{seeded.broken.asset_id}")
    assert status == 200 and json.loads(body)["moments_removed"] == 0
    status, headers, _ = request(server, "PUT", "/api/health")
    assert status == 405 and headers["allow"] == "GET"


def test_local_server_serves_media_byte_ranges(server: LocalServer, services: Services) -> None:
    data = bytes(range(256)) * 40  # 10240 bytes
    services.blobs.put_bytes("s3://medialens-drop/incoming/clips/tone.wav", data)
    path = "/files/medialens-drop/incoming/clips/tone.wav"

    status, headers, body = request(server, "GET", path)
    assert status == 200 and body == data and headers["accept-ranges"] == "bytes"
    assert headers["content-type"] in ("audio/x-wav", "audio/wav")
    status, headers, body = request(server, "GET", path, {"Range": "bytes=1000-1999"})
    assert status == 206 and body == data[1000:2000]
    assert headers["content-range"] == "bytes 1000-1999/10240" and headers["content-length"] == "1000"
    status, headers, body = request(server, "GET", path, {"Range": "bytes=10000-"})
    assert status == 206 and body == data[10000:] and headers["content-range"] == "bytes 10000-10239/10240"
    status, _, body = request(server, "GET", path, {"Range": "bytes=-16"})
    assert status == 206 and body == data[-16:]
    status, headers, _ = request(server, "GET", path, {"Range": "bytes=20000-"})
    assert status == 416 and headers["content-range"] == "bytes */10240"
    status, headers, body = request(server, "HEAD", path)
    assert status == 200 and body == b"" and headers["content-length"] == "10240"

    services.blobs.put_bytes("s3://medialens-drop/incoming/page.html", b"<script>alert(1)</script>")
    status, headers, _ = request(server, "GET", "/files/medialens-drop/incoming/page.html")
    assert status == 200 and headers["content-security-policy"] == "sandbox"
    services.blobs.put_bytes("s3://medialens-drop/incoming/notes.md", b"# Notes")
    assert request(server, "GET", "/files/medialens-drop/incoming/notes.md")[1]["content-type"].startswith("text/plain")


def test_local_server_refuses_what_it_must_not_serve(server: LocalServer, services: Services) -> None:
    services.blobs.put_bytes("s3://other-bucket/secret.txt", b"not yours")
    for path in (
        "/files/other-bucket/secret.txt",
        "/files/medialens-drop/../other-bucket/secret.txt",
        "/files/medialens-drop/%2e%2e/other-bucket/secret.txt",
        "/files/medialens-drop/incoming/missing.wav",
        "/../pyproject.toml",
        "/%2e%2e/pyproject.toml",
        "/app.py",
    ):
        status, _, body = request(server, "GET", path)
        assert status == 404, path
        assert b"not yours" not in body
    status, _, _ = request(server, "POST", "/files/medialens-drop/incoming/x", body=b"data")
    assert status == 405
    # DNS rebinding: a request naming another host is not answered.
    status, _, _ = request(server, "GET", "/api/assets", {"Host": "attacker.example:80"})
    assert status == 421
    # Another site's page cannot change state through the user's browser.
    status, _, body = request(
        server, "POST", f"/api/assets/{uuid.uuid4().hex}/reprocess", {"Origin": "https://attacker.example"}
    )
    assert status == 403 and json.loads(body)["error"]["code"] == "cross_origin"
    status, _, _ = request(server, "POST", "/api/search", {"Content-Length": str(7 * 1024 * 1024)})
    assert status == 413


def test_local_server_serves_the_page_with_a_strict_policy(server: LocalServer) -> None:
    status, headers, body = request(server, "GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'name="medialens-api" content="api/"' in body
    policy = headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    for asset in ("/app.js", "/style.css"):
        assert request(server, "GET", asset)[0] == 200
    # No third-party fetches: every URL the page references is relative.
    page = (
        body.decode() + request(server, "GET", "/app.js")[2].decode() + request(server, "GET", "/style.css")[2].decode()
    )
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page and "//cdn" not in page


def _raw(server: LocalServer, data: bytes) -> tuple[int, dict[str, Any]]:
    """Sends bytes as they are (http.client would refuse to write some of these requests)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        connection.sendall(data)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_malformed_requests_get_4xx_in_the_one_error_shape(server: LocalServer) -> None:
    host = f"Host: 127.0.0.1:{server.port}\r\n".encode()
    for request_bytes, status, code in (
        (b"GET /api/health HTTP/1.1\r\n" + host + b"Content-Length: abc\r\n\r\n", 400, "bad_content_length"),
        (b"POST /api/search HTTP/1.1\r\n" + host + b"Content-Length: -1\r\n\r\n", 400, "bad_content_length"),
        (b"TRACE /api/health HTTP/1.1\r\n" + host + b"\r\n", 405, "method_not_allowed"),
        (b"BREW /api/health HTTP/1.1\r\n" + host + b"\r\n", 405, "method_not_allowed"),
        (b"GET /api/assets/%0A HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\n", 404, "not_found"),
    ):
        answered, body = _raw(server, request_bytes)
        assert (answered, body["error"]["code"]) == (status, code), request_bytes
    json_body = {"Content-Type": "application/json"}
    for headers, payload, status, code in (
        ({"Content-Type": "text/plain"}, b"query=launch", 415, "unsupported_media_type"),
        (json_body, b"\xff\xfe{}", 400, "invalid_body"),
        (json_body, b"[" * 100_000 + b"]" * 100_000, 400, "invalid_body"),
        (json_body, b'{"query": "x",', 400, "invalid_body"),
        (json_body, json.dumps({"query": "x", "filters": {"asset_ids": ["a"] * 101}}).encode(), 400, "invalid_request"),
    ):
        answered, _, raw_body = request(server, "POST", "/api/search", headers, payload)
        assert (answered, json.loads(raw_body)["error"]["code"]) == (status, code), payload[:40]
    assert type(server)._handler_class(server).disable_nagle_algorithm  # small answers are not held back


def test_one_slow_request_does_not_hold_up_the_others(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    started, release, finished = threading.Event(), threading.Event(), threading.Event()
    assert server.services is not None
    search = server.services.search
    original = search.search

    def slow_search(query: Any) -> Any:
        started.set()
        release.wait(30)
        return original(query)

    monkeypatch.setattr(search, "search", slow_search)
    slow = threading.Thread(
        target=lambda: (request(server, "GET", "/api/search?query=budget&mode=keyword"), finished.set())
    )
    slow.start()
    assert started.wait(30)
    status, _, _ = request(server, "GET", "/api/health")  # answered while the search still waits
    still_waiting = not finished.is_set()
    release.set()
    slow.join(30)
    assert status == 200 and still_waiting and finished.is_set()


def test_requests_answered_at_once_never_read_each_others_query(server: LocalServer, seeded: Seeded) -> None:
    """Powertools keeps the event it resolves on a class shared by every resolver: without the
    per-thread event, concurrent searches answered 400 ("query required") or another's query."""
    from concurrent.futures import ThreadPoolExecutor

    def search(number: int) -> tuple[int, str]:
        status, _, body = request(server, "GET", f"/api/search?query=budget{number}&mode=keyword&k=1")
        return status, json.loads(body).get("query", "")

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(search, range(48)))
    assert answers == [(200, f"budget{number}") for number in range(48)]


def test_the_api_serves_its_own_document_and_swagger_ui_without_a_cdn() -> None:
    committed = json.loads((REPO_ROOT / "docs" / "openapi.json").read_text())
    document = app.resolve(rest_event("GET", "/openapi.json"), None)
    assert document["statusCode"] == 200 and json.loads(document["body"]) == committed
    assert committed["servers"] == [{"url": ".", "description": "this API: where this document is served"}]

    page = app.resolve(rest_event("GET", "/docs"), None)
    html = page["body"]
    assert page["statusCode"] == 200 and "text/html" in page["multiValueHeaders"]["Content-Type"][0]
    assert "src='docs/swagger-ui-bundle.min.js'" in html and "href='docs/swagger-ui.min.css'" in html
    assert "http://" not in html.split("<script>")[0] and "https://" not in html.split("<script>")[0]
    assert '"title": "medialens API"' in html or '"title":"medialens API"' in html
    for name, kind in (("swagger-ui-bundle.min.js", "application/javascript"), ("swagger-ui.min.css", "text/css")):
        asset = app.resolve(rest_event("GET", f"/docs/{name}"), None)
        assert asset["statusCode"] == 200 and asset["multiValueHeaders"]["Content-Type"][0].startswith(kind)
        assert len(asset["body"]) > 100_000
    missing = call("GET", "/docs/..%2Fsecrets.js")
    assert_error(missing, 404, "not_found")
    as_json = app.resolve(rest_event("GET", "/docs", query={"format": "json"}), None)
    assert json.loads(as_json["body"]) == committed


def test_the_page_uploads_straight_into_the_drop_bucket(server: LocalServer) -> None:
    assert server.services is not None
    body = b"Visitors sign in at the front desk.\n"
    status, _, answer = request(server, "PUT", "/upload/visitor%20policy.txt", {"Content-Type": "text/plain"}, body)
    assert status == 201, answer
    stored = json.loads(answer)
    assert stored["key"] == "incoming/uploads/visitor policy.txt" and stored["size"] == len(body)
    info = server.services.blobs.head(f"s3://{server.settings.drop_bucket}/{stored['key']}")
    assert info is not None and asset_id_for(info.bucket, info.key, info.etag) == stored["asset_id"]
    # Only a file name is kept: no way out of incoming/uploads/.
    status, _, answer = request(server, "PUT", "/upload/..%2F..%2Fnotes.txt", {}, b"x")
    assert status == 201 and json.loads(answer)["key"] == "incoming/uploads/notes.txt"

    for method, path, headers, payload, expected, code in (
        ("GET", "/upload/a.txt", {}, None, 405, "method_not_allowed"),
        ("PUT", "/upload/a.txt", {"Origin": "https://elsewhere.example"}, b"x", 403, "cross_origin"),
        ("PUT", "/upload/.hidden", {}, b"x", 400, "bad_upload"),
        ("PUT", "/upload/empty.txt", {}, b"", 400, "bad_upload"),
    ):
        status, _, answer = request(server, method, path, headers, payload)
        assert (status, json.loads(answer)["error"]["code"]) == (expected, code), path
    server.settings = server.settings.model_copy(update={"upload_max_bytes": 4})
    status, _, answer = request(server, "PUT", "/upload/big.txt", {}, b"12345")
    assert status == 413 and json.loads(answer)["error"]["code"] == "payload_too_large"
