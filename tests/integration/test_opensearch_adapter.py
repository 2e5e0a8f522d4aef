"""The OpenSearch adapter's exact requests, checked against an HTTP endpoint this test runs on
127.0.0.1: it records every request (method, path, query, headers, body) and answers with
responses recorded from OpenSearch 2.x, which the adapter must parse.

Covers index setup (template, mapping, dimension check), bulk upserts and their per-item errors,
retries with backoff, BM25 and filtered k-NN queries, deletes by asset, counts, SigV4 signing
(service es and aoss, signatures verified independently) and basic auth.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest

from medialens.adapters.index import opensearch as adapter
from medialens.adapters.index.opensearch import (
    IndexRejectedError,
    OpenSearchConfig,
    OpenSearchMomentIndex,
    added_properties,
    build_client,
    index_body,
    resolve_auth,
)
from medialens.domain.assets import MediaType
from medialens.domain.moments import Modality, Moment, VectorField
from medialens.domain.search import SearchFilters, SearchHit
from medialens.errors import ConfigurationError, TransientError
from medialens.services import Services
from medialens.settings import IndexBackend, OpenSearchAuth, Settings

pytestmark = pytest.mark.integration

INDEX = "medialens-moments"
DIMS = 4
NO_FILTER = SearchFilters()

# --- recorded OpenSearch responses ------------------------------------------------------------

SHARDS = {"total": 2, "successful": 1, "failed": 0}
ACKNOWLEDGED = {"acknowledged": True}
CREATED_INDEX = {"acknowledged": True, "shards_acknowledged": True, "index": INDEX}
INDEX_NOT_FOUND = {
    "error": {
        "root_cause": [
            {
                "type": "index_not_found_exception",
                "reason": f"no such index [{INDEX}]",
                "index": INDEX,
                "resource.id": INDEX,
                "resource.type": "index_or_alias",
                "index_uuid": "_na_",
            }
        ],
        "type": "index_not_found_exception",
        "reason": f"no such index [{INDEX}]",
        "index": INDEX,
        "resource.id": INDEX,
        "resource.type": "index_or_alias",
        "index_uuid": "_na_",
    },
    "status": 404,
}
ALREADY_EXISTS = {
    "error": {
        "root_cause": [{"type": "resource_already_exists_exception", "reason": f"index [{INDEX}/x1] already exists"}],
        "type": "resource_already_exists_exception",
        "reason": f"index [{INDEX}/x1] already exists",
        "index": INDEX,
    },
    "status": 400,
}
TOO_MANY_REQUESTS = {
    "error": {
        "root_cause": [
            {"type": "rejected_execution_exception", "reason": "rejected execution of coordinating operation"}
        ],
        "type": "rejected_execution_exception",
        "reason": "rejected execution of coordinating operation [coordinating_and_primary_bytes=104857600]",
    },
    "status": 429,
}
UNAVAILABLE = {
    "error": {
        "root_cause": [{"type": "cluster_block_exception", "reason": "blocked by: [SERVICE_UNAVAILABLE/2/no master];"}],
        "type": "cluster_block_exception",
        "reason": "blocked by: [SERVICE_UNAVAILABLE/2/no master];",
    },
    "status": 503,
}


def mapping_response(dimension: int) -> dict[str, Any]:
    body = index_body(OpenSearchConfig(url="http://x", index=INDEX, dimensions=dimension))
    return {INDEX: {"mappings": body["mappings"]}}


def bulk_item(operation: str, doc_id: str, status: int, error: dict[str, Any] | None = None) -> dict[str, Any]:
    if error is not None:
        return {operation: {"_index": INDEX, "_id": doc_id, "status": status, "error": error}}
    result = {201: "created", 200: "updated" if operation == "index" else "deleted", 404: "not_found"}[status]
    return {
        operation: {
            "_index": INDEX,
            "_id": doc_id,
            "_version": 2,
            "result": result,
            "_shards": SHARDS,
            "_seq_no": 7,
            "_primary_term": 1,
            "status": status,
        }
    }


def bulk_response(*items: dict[str, Any]) -> dict[str, Any]:
    errors = any("error" in next(iter(item.values())) for item in items)
    return {"took": 12, "errors": errors, "items": list(items)}


def source(moment_id: str, asset_id: str = "a1", **fields: Any) -> dict[str, Any]:
    document = {
        "moment_id": moment_id,
        "asset_id": asset_id,
        "source": f"s3://medialens-drop/incoming/{asset_id}.pdf",
        "media_type": "document",
        "modality": "document",
        "text": f"text of {moment_id}",
        "start": None,
        "end": None,
        "page": 2,
        "section": None,
        "confidence": None,
        "model_versions": {"text_embedding": "all-minilm-l6-v2@1+int8"},
        "pipeline_version": "1",
        "narration_uri": None,
        "narration_start": None,
        "narration_end": None,
        "language": None,
        "embedding_model": "all-minilm-l6-v2@1",  # the vector's space, for semantic queries to filter on
    }
    document.update(fields)
    return document


def search_response(*hits: tuple[str, float | None, dict[str, Any], list[Any] | None]) -> dict[str, Any]:
    return {
        "took": 4,
        "timed_out": False,
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": {
            "total": {"value": len(hits), "relation": "eq"},
            "max_score": max((score for _, score, _, _ in hits if score is not None), default=None),
            "hits": [
                {"_index": INDEX, "_id": doc_id, "_score": score, "_source": body, **({"sort": sort} if sort else {})}
                for doc_id, score, body, sort in hits
            ],
        },
    }


# --- the recording endpoint -------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    raw_query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def ndjson(self) -> list[Any]:
        text = self.body.decode()
        assert text.endswith("\n"), "a bulk body ends with a newline"
        return [json.loads(line) for line in text.splitlines()]


class RecordingServer:
    """Answers each (method, path) with its scripted responses in turn (the last one repeats)."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.routes: dict[tuple[str, str], list[tuple[int, Any]]] = {}
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                recorded = Recorded(
                    method=self.command,
                    path=parts.path,
                    query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                    raw_query=parts.query,
                    headers={name.lower(): value for name, value in self.headers.items()},
                    body=body,
                )
                with owner._lock:
                    owner.requests.append(recorded)
                    queue = owner.routes.get((self.command, parts.path))
                    if queue:
                        status, payload = queue.pop(0) if len(queue) > 1 else queue[0]
                    else:
                        status, payload = 599, {"error": f"unscripted {self.command} {parts.path}"}
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def do_GET(self) -> None:
                self._answer()

            def do_PUT(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def do_HEAD(self) -> None:
                self._answer()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def on(self, method: str, path: str, *responses: tuple[int, Any]) -> None:
        self.routes[(method, path)] = list(responses)

    def calls(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if (r.method, r.path) == (method, path)]


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    recording = RecordingServer()
    recording.thread.start()
    yield recording
    recording.httpd.shutdown()
    recording.httpd.server_close()


def make_index(
    url: str, auth: OpenSearchAuth = OpenSearchAuth.NONE, **options: Any
) -> tuple[OpenSearchMomentIndex, list[float]]:
    """An adapter on ``url`` whose backoff sleeps are recorded, not slept."""
    engine = options.pop("engine", "faiss" if auth is OpenSearchAuth.AOSS else "lucene")
    config = OpenSearchConfig(url=url, index=INDEX, dimensions=DIMS, auth=auth, engine=engine, **options)
    sleeps: list[float] = []
    return OpenSearchMomentIndex(build_client(config), config, sleep=sleeps.append), sleeps


def moment(moment_id: str, vector: list[float] | None = (3.0, 0.0, 4.0, 0.0), asset_id: str = "a1") -> Moment:  # type: ignore[assignment]
    return Moment(
        moment_id=moment_id,
        asset_id=asset_id,
        source=f"s3://medialens-drop/incoming/{asset_id}.pdf",
        media_type=MediaType.DOCUMENT,
        modality=Modality.DOCUMENT,
        text=f"text of {moment_id}",
        page=2,
        vector=list(vector) if vector is not None else None,
        model_versions={"text_embedding": "all-minilm-l6-v2@1+int8"},
        pipeline_version="1",
    )


def script_fresh_index(server: RecordingServer) -> None:
    server.on("PUT", f"/_index_template/{INDEX}-template", (200, ACKNOWLEDGED))
    server.on("HEAD", f"/{INDEX}", (404, None))
    server.on("PUT", f"/{INDEX}", (200, CREATED_INDEX))


# --- index setup and upserts ------------------------------------------------------------------


def test_first_upsert_installs_template_creates_index_and_bulk_indexes_by_moment_id(server: RecordingServer) -> None:
    script_fresh_index(server)
    server.on(
        "POST", f"/{INDEX}/_bulk", (200, bulk_response(bulk_item("index", "m1", 201), bulk_item("index", "m2", 201)))
    )
    index, sleeps = make_index(server.url)
    # m1 twice: the last one given wins, as in the embedded index.
    written = index.upsert([moment("m1", [1, 0, 0, 0]), moment("m2", None), moment("m1")])
    assert written == 2 and sleeps == []

    assert [(r.method, r.path) for r in server.requests] == [
        ("PUT", f"/_index_template/{INDEX}-template"),
        ("HEAD", f"/{INDEX}"),
        ("PUT", f"/{INDEX}"),
        ("POST", f"/{INDEX}/_bulk"),
    ]
    template = server.requests[0].json()
    expected_body = index_body(index.config)
    assert template == {"index_patterns": [INDEX], "priority": 100, "template": expected_body}
    created = server.requests[2].json()
    assert created == expected_body
    vector = created["mappings"]["properties"]["vector"]
    assert vector == {
        "type": "knn_vector",
        "dimension": DIMS,
        "method": {
            "name": "hnsw",
            "space_type": "cosinesimil",
            "engine": "lucene",
            "parameters": {"m": 16, "ef_construction": 128},
        },
    }
    properties = created["mappings"]["properties"]
    assert properties["text"] == {"type": "text", "analyzer": "moment_text"}
    assert all(properties[name] == {"type": "keyword"} for name in ("moment_id", "asset_id", "media_type", "modality"))
    assert created["mappings"]["dynamic"] == "strict"
    assert created["settings"]["index"] == {"knn": True, "number_of_shards": 1, "number_of_replicas": 1}

    bulk = server.requests[3]
    assert bulk.query == {"refresh": "wait_for"}  # SUCCEEDED means searchable
    lines = bulk.ndjson()
    assert lines[0] == {"index": {"_id": "m1"}} and lines[2] == {"index": {"_id": "m2"}}
    assert lines[1] == {**source("m1"), "vector": [0.6, 0.0, 0.8, 0.0]}  # unit length
    assert lines[3] == source("m2")  # no vector: keyword-only
    assert len(lines) == 4


def test_setup_runs_once_and_an_existing_index_must_have_our_dimensions(server: RecordingServer) -> None:
    server.on("PUT", f"/_index_template/{INDEX}-template", (200, ACKNOWLEDGED))
    server.on("HEAD", f"/{INDEX}", (200, None))
    server.on("GET", f"/{INDEX}/_mapping", (200, mapping_response(DIMS)))
    server.on("PUT", f"/{INDEX}/_mapping", (200, ACKNOWLEDGED))
    server.on("POST", f"/{INDEX}/_bulk", (200, bulk_response(bulk_item("index", "m1", 200))))
    index, _ = make_index(server.url)
    index.upsert([moment("m1")])
    index.upsert([moment("m1")])
    assert len(server.calls("HEAD", f"/{INDEX}")) == 1 and len(server.calls("PUT", f"/{INDEX}")) == 0
    assert len(server.calls("POST", f"/{INDEX}/_bulk")) == 2
    # An index made by an older release gains the fields added since: its mapping is strict.
    (update,) = server.calls("PUT", f"/{INDEX}/_mapping")
    assert update.json() == {"properties": added_properties(index.config)}
    assert set(added_properties(index.config)) <= set(index_body(index.config)["mappings"]["properties"])

    server.on("GET", f"/{INDEX}/_mapping", (200, mapping_response(768)))
    other, _ = make_index(server.url)
    with pytest.raises(ConfigurationError, match="768-dimensional"):
        other.upsert([moment("m1")])


def test_a_concurrent_creator_winning_the_race_is_fine(server: RecordingServer) -> None:
    script_fresh_index(server)
    server.on("PUT", f"/{INDEX}", (400, ALREADY_EXISTS))
    server.on("POST", f"/{INDEX}/_bulk", (200, bulk_response(bulk_item("index", "m1", 201))))
    index, _ = make_index(server.url)
    assert index.upsert([moment("m1")]) == 1


def test_throttled_bulk_items_are_resent_alone_with_backoff(server: RecordingServer) -> None:
    script_fresh_index(server)
    throttled = {"type": "es_rejected_execution_exception", "reason": "rejected execution of primary operation"}
    server.on(
        "POST",
        f"/{INDEX}/_bulk",
        (200, bulk_response(bulk_item("index", "m1", 201), bulk_item("index", "m2", 429, throttled))),
        (200, bulk_response(bulk_item("index", "m2", 201))),
    )
    index, sleeps = make_index(server.url)
    assert index.upsert([moment("m1"), moment("m2")]) == 2
    first, second = server.calls("POST", f"/{INDEX}/_bulk")
    assert [line.get("index") for line in first.ndjson()[::2]] == [{"_id": "m1"}, {"_id": "m2"}]
    assert second.ndjson() == [{"index": {"_id": "m2"}}, first.ndjson()[3]]
    assert len(sleeps) == 1 and 0.0 <= sleeps[0] <= 0.2


def test_a_rejected_document_fails_the_step_without_retrying(server: RecordingServer) -> None:
    script_fresh_index(server)
    mapping_error = {
        "type": "mapper_parsing_exception",
        "reason": "failed to parse field [vector] of type [knn_vector] in document with id 'm2'",
    }
    server.on(
        "POST",
        f"/{INDEX}/_bulk",
        (200, bulk_response(bulk_item("index", "m1", 201), bulk_item("index", "m2", 400, mapping_error))),
    )
    index, sleeps = make_index(server.url)
    with pytest.raises(IndexRejectedError, match=r"1 of 2 bulk items.*m2: HTTP 400 mapper_parsing_exception") as info:
        index.upsert([moment("m1"), moment("m2")])
    assert not info.value.retryable and info.value.error_name == "MediaLens.IndexRejected"
    assert len(server.calls("POST", f"/{INDEX}/_bulk")) == 1 and sleeps == []


def test_throttling_and_5xx_are_retried_then_become_transient(server: RecordingServer) -> None:
    script_fresh_index(server)
    server.on("POST", f"/{INDEX}/_bulk", (503, UNAVAILABLE), (200, bulk_response(bulk_item("index", "m1", 201))))
    index, sleeps = make_index(server.url)
    assert index.upsert([moment("m1")]) == 1 and len(sleeps) == 1

    server.on("POST", f"/{INDEX}/_bulk", (429, TOO_MANY_REQUESTS))
    before = len(server.calls("POST", f"/{INDEX}/_bulk"))
    index, sleeps = make_index(server.url, max_attempts=4, backoff_base_s=0.5, backoff_max_s=1.5)
    with pytest.raises(TransientError, match="bulk write failed after 4 attempts: HTTP 429") as info:
        index.upsert([moment("m1")])
    assert info.value.retryable and info.value.error_name == "MediaLens.Transient"
    assert len(server.calls("POST", f"/{INDEX}/_bulk")) - before == 4
    # Full jitter under a doubling ceiling: 0.5, 1.0, then capped at 1.5.
    assert len(sleeps) == 3 and all(0 <= s <= c for s, c in zip(sleeps, (0.5, 1.0, 1.5), strict=True))


def test_an_unreachable_cluster_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again on exit: nothing listens there
    index, sleeps = make_index(f"http://127.0.0.1:{port}", max_attempts=2, timeout_s=2.0)
    with pytest.raises(TransientError, match="connection failed"):
        index.keyword("anything", 5, NO_FILTER)
    assert len(sleeps) == 1


def test_bad_vectors_are_refused_before_any_request(server: RecordingServer) -> None:
    index, _ = make_index(server.url)
    with pytest.raises(ValueError, match="4 dimensions"):
        index.upsert([moment("m1", [1.0, 2.0])])
    with pytest.raises(ValueError, match="non-zero"):
        index.upsert([moment("m1", [0.0, 0.0, 0.0, 0.0])])
    assert server.requests == []


# --- queries ----------------------------------------------------------------------------------


def test_keyword_query_is_bm25_match_with_filters(server: RecordingServer) -> None:
    server.on(
        "POST",
        f"/{INDEX}/_search",
        (200, search_response(("m2", 7.25, source("m2"), None), ("m1", 3.5, source("m1", page=1), None))),
    )
    index, _ = make_index(server.url)
    filters = SearchFilters(
        media_types=[MediaType.DOCUMENT, MediaType.VIDEO],
        asset_ids=["a1"],
        modalities=[Modality.DOCUMENT],
        languages=["sv"],
    )
    hits = index.keyword("vacation days", 5, filters)
    (request,) = server.requests
    assert request.json() == {
        "size": 5,
        "_source": {"excludes": ["vector", "english_vector", "image_vector"]},
        "track_total_hits": False,
        "query": {
            "bool": {
                "must": [{"match": {"text": {"query": "vacation days", "operator": "or"}}}],
                "filter": [
                    {"terms": {"media_type": ["document", "video"]}},
                    {"terms": {"asset_id": ["a1"]}},
                    {"terms": {"modality": ["document"]}},
                    {"terms": {"language": ["sv"]}},
                ],
            }
        },
    }
    assert [(h.moment_id, h.score, h.page) for h in hits] == [("m2", 7.25, 2), ("m1", 3.5, 1)]
    assert hits[0] == SearchHit.model_validate({**source("m2"), "score": 7.25})
    assert index.keyword("   ", 5, NO_FILTER) == [] and len(server.requests) == 1  # nothing to match: no request


def test_semantic_query_is_filtered_knn_and_scores_are_cosine(server: RecordingServer) -> None:
    server.on(
        "POST",
        f"/{INDEX}/_search",
        (
            200,
            search_response(
                ("m1", 0.9, source("m1"), None),
                ("m3", 0.5, source("m3", media_type="audio", modality="speech", start=4.0, end=9.5, page=None), None),
            ),
        ),
    )
    index, _ = make_index(server.url, ef_search=64)
    hits = index.semantic([0.0, 2.0, 0.0, 0.0], 3, SearchFilters(media_types=[MediaType.AUDIO]), embedding_model="e5@1")
    (request,) = server.requests
    assert request.json() == {
        "size": 3,
        "_source": {"excludes": ["vector", "english_vector", "image_vector"]},
        # Lucene takes its HNSW search breadth from k: ask for ef_search candidates, keep size.
        "query": {
            "knn": {
                "vector": {
                    "vector": [0.0, 1.0, 0.0, 0.0],
                    "k": 64,
                    "filter": {
                        "bool": {
                            "filter": [
                                {"terms": {"media_type": ["audio"]}},
                                # only vectors of the query's model (see MomentIndex.semantic)
                                {"term": {"embedding_model": "e5@1"}},
                            ]
                        }
                    },
                }
            }
        },
    }
    # cosinesimil scores are (1 + cos) / 2.
    assert [(h.moment_id, round(h.score, 6)) for h in hits] == [("m1", 0.8), ("m3", 0.0)]
    assert hits[1].start == 4.0 and hits[1].modality is Modality.SPEECH

    faiss, _ = make_index(server.url, engine="faiss")
    faiss.semantic([1.0, 0.0, 0.0, 0.0], 3, NO_FILTER)
    knn = server.requests[-1].json()["query"]["knn"]["vector"]
    assert knn == {"vector": [1.0, 0.0, 0.0, 0.0], "k": 3}  # faiss reads ef_search from the index settings


def test_reads_of_a_missing_index_are_empty(server: RecordingServer) -> None:
    server.on("POST", f"/{INDEX}/_search", (404, INDEX_NOT_FOUND))
    server.on("POST", f"/{INDEX}/_count", (404, INDEX_NOT_FOUND))
    index, sleeps = make_index(server.url)
    assert index.keyword("x", 3, NO_FILTER) == []
    assert index.semantic([1, 0, 0, 0], 3, NO_FILTER) == []
    assert index.count() == 0 and index.delete_asset("a1") == 0
    assert sleeps == []  # a 404 is an answer, not a failure to retry


def test_count_all_and_by_asset(server: RecordingServer) -> None:
    server.on("POST", f"/{INDEX}/_count", (200, {"count": 42, "_shards": SHARDS}))
    index, _ = make_index(server.url)
    assert index.count() == 42 and index.count("a1") == 42
    assert [r.json() for r in server.calls("POST", f"/{INDEX}/_count")] == [
        {"query": {"match_all": {}}},
        {"query": {"term": {"asset_id": "a1"}}},
    ]


def test_delete_asset_pages_through_its_documents_and_bulk_deletes(
    server: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adapter, "LIST_PAGE", 2)
    server.on(
        "POST",
        f"/{INDEX}/_search",
        (200, search_response(("m1", None, {"moment_id": "m1"}, ["m1"]), ("m2", None, {"moment_id": "m2"}, ["m2"]))),
        (200, search_response(("m3", None, {"moment_id": "m3"}, ["m3"]))),
    )
    server.on(
        "POST",
        f"/{INDEX}/_bulk",
        (200, bulk_response(bulk_item("delete", "m1", 200), bulk_item("delete", "m2", 404))),
        (200, bulk_response(bulk_item("delete", "m3", 200))),
    )
    index, _ = make_index(server.url, bulk_documents=2)
    assert index.delete_asset("a1") == 2  # m2 was already gone
    first, second = server.calls("POST", f"/{INDEX}/_search")
    assert first.json() == {
        "size": 2,
        "_source": ["moment_id"],
        "query": {"bool": {"filter": [{"term": {"asset_id": "a1"}}]}},
        "sort": [{"moment_id": "asc"}],
        "track_total_hits": False,
    }
    assert second.json()["search_after"] == ["m2"]
    bulks = server.calls("POST", f"/{INDEX}/_bulk")
    assert [b.ndjson() for b in bulks] == [
        [{"delete": {"_id": "m1"}}, {"delete": {"_id": "m2"}}],
        [{"delete": {"_id": "m3"}}],
    ]
    assert [b.query for b in bulks] == [{}, {"refresh": "wait_for"}]  # the last request waits for refresh


def test_delete_stale_removes_only_what_a_rerun_no_longer_has(server: RecordingServer) -> None:
    server.on(
        "POST",
        f"/{INDEX}/_search",
        (200, search_response(*[(m, None, {"moment_id": m}, [m]) for m in ("m1", "m2", "m3")])),
    )
    server.on("POST", f"/{INDEX}/_bulk", (200, bulk_response(bulk_item("delete", "m2", 200))))
    index, _ = make_index(server.url)
    assert index.delete_stale("a1", {"m1", "m3"}) == 1
    (bulk,) = server.calls("POST", f"/{INDEX}/_bulk")
    assert bulk.ndjson() == [{"delete": {"_id": "m2"}}]
    assert index.delete_stale("a1", {"m1", "m2", "m3"}) == 0
    assert len(server.calls("POST", f"/{INDEX}/_bulk")) == 1  # nothing stale: no bulk request


def test_asset_moments_in_reading_order(server: RecordingServer) -> None:
    server.on("POST", f"/{INDEX}/_search", (200, search_response(("m1", None, source("m1", page=1), [1, None, "m1"]))))
    index, _ = make_index(server.url)
    (listed,) = index.asset_moments("a1", limit=50)
    assert listed.moment_id == "m1" and listed.page == 1
    body = server.requests[0].json()
    assert body["size"] == 50 and body["query"] == {"bool": {"filter": [{"term": {"asset_id": "a1"}}]}}
    assert body["sort"][0] == {"page": {"order": "asc", "missing": "_first"}}


# --- signing ----------------------------------------------------------------------------------

AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
    r"SignedHeaders=(?P<signed>[^,]+), Signature=(?P<signature>[0-9a-f]{64})$"
)


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def verify_sigv4(request: Recorded, secret_key: str = "testing") -> dict[str, str]:
    """Recomputes the SigV4 signature from what arrived (AWS's published algorithm, written out
    here rather than borrowed from the signing library) and checks it matches."""
    match = AUTHORIZATION.match(request.headers["authorization"])
    assert match, request.headers["authorization"]
    fields = match.groupdict()
    payload_hash = hashlib.sha256(request.body).hexdigest()
    assert request.headers["x-amz-content-sha256"] == payload_hash
    signed = fields["signed"].split(";")
    assert {"host", "x-amz-date"} <= set(signed)
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(parse_qsl(request.raw_query, keep_blank_values=True))
    )
    canonical_headers = "".join(f"{name}:{' '.join(request.headers[name].split())}\n" for name in signed)
    canonical_request = "\n".join(
        [
            request.method,
            quote(request.path, safe="/-_.~"),
            canonical_query,
            canonical_headers,
            fields["signed"],
            payload_hash,
        ]
    )
    scope = f"{fields['date']}/{fields['region']}/{fields['service']}/aws4_request"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            request.headers["x-amz-date"],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = _hmac(("AWS4" + secret_key).encode(), fields["date"])
    for part in (fields["region"], fields["service"], "aws4_request"):
        key = _hmac(key, part)
    assert hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest() == fields["signature"]
    return fields


def test_managed_domain_requests_are_sigv4_signed_for_es(server: RecordingServer) -> None:
    script_fresh_index(server)
    server.on("POST", f"/{INDEX}/_bulk", (200, bulk_response(bulk_item("index", "m1", 201))))
    server.on("POST", f"/{INDEX}/_search", (200, search_response()))
    index, _ = make_index(server.url, OpenSearchAuth.ES, region="eu-west-1")
    index.upsert([moment("m1")])
    index.keyword("vacation", 3, NO_FILTER)
    assert len(server.requests) == 5
    for request in server.requests:
        fields = verify_sigv4(request)
        assert (fields["key"], fields["region"], fields["service"]) == ("testing", "eu-west-1", "es")


def test_serverless_collections_sign_for_aoss_and_upsert_without_custom_ids(server: RecordingServer) -> None:
    server.on("HEAD", f"/{INDEX}", (404, None))
    server.on("PUT", f"/{INDEX}", (200, CREATED_INDEX))
    # m1 exists already under a generated id: the upsert writes the new one, then deletes it.
    server.on("POST", f"/{INDEX}/_search", (200, search_response(("Xa8tr5IBQ", None, {}, None))))
    server.on(
        "POST",
        f"/{INDEX}/_bulk",
        (200, bulk_response(bulk_item("index", "Yb9us6JCR", 201), bulk_item("index", "Zc0vt7KDS", 201))),
        (200, bulk_response(bulk_item("delete", "Xa8tr5IBQ", 200))),
    )
    index, _ = make_index(server.url, OpenSearchAuth.AOSS)
    assert index.upsert([moment("m1"), moment("m2")]) == 2

    assert [(r.method, r.path) for r in server.requests] == [
        ("HEAD", f"/{INDEX}"),  # no template: Serverless is set up with the index itself
        ("PUT", f"/{INDEX}"),
        ("POST", f"/{INDEX}/_search"),
        ("POST", f"/{INDEX}/_bulk"),
        ("POST", f"/{INDEX}/_bulk"),
    ]
    created = server.requests[1].json()
    assert created["settings"]["index"] == {"knn": True, "knn.algo_param.ef_search": 256}  # no shard settings
    assert created["mappings"]["properties"]["vector"]["method"]["engine"] == "faiss"
    assert server.requests[2].json() == {
        "size": 1000,
        "_source": False,
        "query": {"terms": {"moment_id": ["m1", "m2"]}},
    }
    insert, delete = server.requests[3], server.requests[4]
    assert insert.ndjson()[::2] == [{"index": {}}, {"index": {}}]
    assert insert.ndjson()[1]["moment_id"] == "m1"
    assert delete.ndjson() == [{"delete": {"_id": "Xa8tr5IBQ"}}]
    assert insert.query == {} and delete.query == {}  # Serverless has no refresh parameter
    for request in server.requests:
        fields = verify_sigv4(request)
        assert fields["service"] == "aoss"


def test_user_and_password_in_the_url_are_basic_auth(server: RecordingServer) -> None:
    server.on("POST", f"/{INDEX}/_count", (200, {"count": 1, "_shards": SHARDS}))
    index, _ = make_index(server.url.replace("http://", "http://admin:s%3Acret@"))
    assert index.count() == 1
    (request,) = server.requests
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"admin:s:cret").decode()


# --- wiring -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://search-media-abc123.eu-west-1.es.amazonaws.com", OpenSearchAuth.ES),
        ("https://0123abcd.us-east-1.aoss.amazonaws.com", OpenSearchAuth.AOSS),
        ("http://localhost:9200", OpenSearchAuth.NONE),
    ],
)
def test_auth_mode_follows_the_endpoint(url: str, expected: OpenSearchAuth) -> None:
    assert resolve_auth(url, OpenSearchAuth.AUTO) is expected
    assert resolve_auth(url, OpenSearchAuth.NONE) is OpenSearchAuth.NONE


def test_services_wire_the_opensearch_backend(settings: Settings) -> None:
    configured = settings.model_copy(update={"opensearch_url": "https://0123abcd.us-east-1.aoss.amazonaws.com"})
    index = Services(configured).index
    assert isinstance(index, OpenSearchMomentIndex)
    assert index.config.auth is OpenSearchAuth.AOSS and index.config.engine == "faiss"
    assert index.config.dimensions == 384 and index.index == configured.index_name
    without_url = settings.model_copy(update={"index_backend": IndexBackend.OPENSEARCH})
    with pytest.raises(ConfigurationError, match="OPENSEARCH_URL"):
        _ = Services(without_url).index


def test_image_vectors_have_their_own_field_and_query(server: RecordingServer) -> None:
    """With an image-text model set, the mapping gains image_vector (its dimensions) and
    image_model; a VISUAL moment's picture is indexed there, and an IMAGE query asks that field,
    filtered on the model. Without one, an IMAGE query sends nothing."""
    script_fresh_index(server)
    server.on("POST", f"/{INDEX}/_bulk", (200, bulk_response(bulk_item("index", "v1", 201))))
    index, _ = make_index(server.url, image_dimensions=2)
    shown = moment("v1").model_copy(
        update={
            "modality": Modality.VISUAL,
            "image_vector": [3.0, 4.0],
            "model_versions": {"text_embedding": "all-minilm-l6-v2@1+int8", "image_embedding": "clip@2+fp32"},
        }
    )
    index.upsert([shown])
    properties = server.requests[2].json()["mappings"]["properties"]
    assert properties["image_vector"]["dimension"] == 2 and properties["image_model"] == {"type": "keyword"}
    (document,) = server.requests[3].ndjson()[1::2]
    assert document["image_vector"] == [0.6, 0.8] and document["image_model"] == "clip@2"

    server.on("POST", f"/{INDEX}/_search", (200, search_response(("v1", 0.9, source("v1", modality="visual"), None))))
    hits = index.semantic([0.0, 5.0], 2, NO_FILTER, embedding_model="clip@2", field=VectorField.IMAGE)
    knn = server.requests[-1].json()["query"]["knn"]
    assert list(knn) == ["image_vector"] and knn["image_vector"]["vector"] == [0.0, 1.0]
    assert knn["image_vector"]["filter"] == {"bool": {"filter": [{"term": {"image_model": "clip@2"}}]}}
    assert [hit.moment_id for hit in hits] == ["v1"]

    without, _ = make_index(server.url)
    sent = len(server.requests)
    assert without.semantic([0.0, 1.0], 2, NO_FILTER, field=VectorField.IMAGE) == []
    assert len(server.requests) == sent
    with pytest.raises(ConfigurationError, match="image_dimensions"):
        without.upsert([shown])
