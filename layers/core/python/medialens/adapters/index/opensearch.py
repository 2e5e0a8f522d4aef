"""The AWS profile's moment index: one OpenSearch index on a managed domain or a Serverless
collection (or any OpenSearch 2.x cluster), behind the same ``MomentIndex`` interface as LanceDB.

Mapping: analysed English ``text`` for BM25, keyword fields for filters, and a ``knn_vector``
(HNSW, cosine space) for k-NN with efficient filtering. An index template with the same body is
installed first, so an index that something re-creates by writing to it (a bulk request after
the index was deleted) gets this mapping rather than a dynamic one with a float-array "vector".

Document ids: a domain stores each moment under ``_id = moment_id``, so a bulk ``index`` is an
upsert. Serverless *vector search* collections refuse caller-chosen ids, so there an upsert
writes new documents and then deletes the ones found earlier under the same ``moment_id``;
Serverless is eventually consistent, so a lookup may miss a document written seconds before:
reads drop repeated ``moment_id``s, and the duplicate is removed by the asset's next re-run.

Errors: throttling (429), server errors (5xx) and connection failures are retried with
exponential backoff and full jitter; what still fails is a ``TransientError``, which the state
machine retries. Bulk responses are read item by item: throttled items are resent alone, an item
the cluster rejects (a mapping error) fails the step with ``IndexRejectedError``.
"""

from __future__ import annotations

import functools
import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

import numpy as np
from opensearchpy import OpenSearch, RequestsHttpConnection
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import NotFoundError, TransportError

from medialens.adapters.index.base import MomentIndex
from medialens.domain.moments import Moment, VectorField
from medialens.domain.search import SearchFilters, SearchHit
from medialens.errors import ConfigurationError, MediaLensError, TransientError
from medialens.settings import OpenSearchAuth, Settings

T = TypeVar("T")

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# One search page when listing an asset's documents (deletes): well under max_result_window.
LIST_PAGE = 1000
# Terms per lookup of existing documents by moment_id (Serverless upserts).
TERMS_CHUNK = 500
MAX_LISTED_MOMENTS = 10_000  # index.max_result_window's default: one page, no deep paging

_VECTOR_FIELDS = [field.value for field in VectorField]
_SOURCE_EXCLUDES = {"excludes": _VECTOR_FIELDS}  # hits do not need 1.5 KB of floats each


class IndexRejectedError(MediaLensError):
    """The cluster refused a document or request as invalid (mapping, dimensions): not retried."""

    error_name = "MediaLens.IndexRejected"


@dataclass(frozen=True, slots=True)
class OpenSearchConfig:
    url: str
    index: str
    dimensions: int
    english_dimensions: int | None = None  # the English-trained encoder's (None: as ``dimensions``)
    image_dimensions: int | None = None  # an image-text model's image vectors (None: no such field)
    auth: OpenSearchAuth = OpenSearchAuth.NONE  # resolved: never AUTO
    region: str = "us-east-1"
    engine: str = "lucene"
    hnsw_m: int = 16
    ef_construction: int = 128
    ef_search: int = 256
    shards: int = 1
    replicas: int = 1
    timeout_s: float = 10.0
    max_attempts: int = 5
    bulk_documents: int = 500
    backoff_base_s: float = 0.2
    backoff_max_s: float = 5.0

    @property
    def serverless(self) -> bool:
        return self.auth is OpenSearchAuth.AOSS

    @property
    def custom_ids(self) -> bool:
        """Serverless vector collections generate document ids themselves."""
        return not self.serverless

    @property
    def template_name(self) -> str:
        return f"{self.index}-template"


def resolve_auth(url: str, auth: OpenSearchAuth) -> OpenSearchAuth:
    """AUTO: SigV4 for AWS endpoints, by host name; nothing for any other cluster."""
    if auth is not OpenSearchAuth.AUTO:
        return auth
    host = (urlparse(url).hostname or "").lower()
    if host.endswith(".aoss.amazonaws.com"):
        return OpenSearchAuth.AOSS
    if host.endswith(".es.amazonaws.com"):
        return OpenSearchAuth.ES
    return OpenSearchAuth.NONE


def index_body(config: OpenSearchConfig) -> dict[str, Any]:
    """Settings and mappings of the moments index (also the template's body)."""
    index_settings: dict[str, Any] = {"knn": True}
    if config.engine != "lucene":
        # Lucene's HNSW takes its search breadth from the query's k (see ``semantic``).
        index_settings["knn.algo_param.ef_search"] = config.ef_search
    if not config.serverless:
        # Serverless manages shards and replicas itself and rejects these settings.
        index_settings["number_of_shards"] = config.shards
        index_settings["number_of_replicas"] = config.replicas
    keyword = {"type": "keyword"}
    return {
        "settings": {
            "index": index_settings,
            "analysis": {
                # The embedded index's tokenizer settings, in OpenSearch terms: lower case,
                # accent folding, English stop words and stemming, and Chinese, Japanese and
                # Korean as character bigrams (adapters.index.keywords; an index created before
                # keeps its analyzer until it is re-created).
                "analyzer": {
                    "moment_text": {
                        "type": "custom",
                        "tokenizer": "standard",
                        "filter": [
                            "cjk_width",
                            "lowercase",
                            "cjk_bigram",
                            "asciifolding",
                            "moment_stop",
                            "moment_stem",
                        ],
                    }
                },
                "filter": {
                    "moment_stop": {"type": "stop", "stopwords": "_english_"},
                    "moment_stem": {"type": "stemmer", "language": "english"},
                },
            },
        },
        "mappings": {
            "dynamic": "strict",  # a misspelt field is an error, not a new mapping
            "properties": {
                "moment_id": keyword,
                "asset_id": keyword,
                "source": keyword,
                "media_type": keyword,
                "modality": keyword,
                "text": {"type": "text", "analyzer": "moment_text"},
                "start": {"type": "double"},
                "end": {"type": "double"},
                "page": {"type": "integer"},
                "section": {"type": "text", "analyzer": "moment_text"},
                "vector": knn_field(config, config.dimensions),
                "confidence": {"type": "double"},
                # Kept in _source for provenance, never searched.
                "model_versions": {"type": "object", "enabled": False},
                "pipeline_version": keyword,
                **added_properties(config),
            },
        },
    }


# Fields added since indices were first created: an existing index gains them (put mapping is
# additive), since its "strict" mapping would refuse documents that carry them.
def added_properties(config: OpenSearchConfig) -> dict[str, Any]:
    return {
        "narration_uri": {"type": "keyword", "index": False},
        "narration_start": {"type": "double", "index": False},
        "narration_end": {"type": "double", "index": False},
        "language": {"type": "keyword"},
        # The vector spaces of "vector" and "english_vector" (domain.moments.vector_space).
        "embedding_model": {"type": "keyword"},
        "english_vector": knn_field(config, config.english_dimensions or config.dimensions),
        "english_model": {"type": "keyword"},
        **(
            {"image_vector": knn_field(config, config.image_dimensions), "image_model": {"type": "keyword"}}
            if config.image_dimensions
            else {}
        ),
    }


def knn_field(config: OpenSearchConfig, dimensions: int) -> dict[str, Any]:
    return {
        "type": "knn_vector",
        "dimension": dimensions,
        "method": {
            "name": "hnsw",
            "space_type": "cosinesimil",
            "engine": config.engine,
            "parameters": {"m": config.hnsw_m, "ef_construction": config.ef_construction},
        },
    }


def filter_clauses(filters: SearchFilters) -> list[dict[str, Any]]:
    """``terms`` clauses for the filters: each list is an OR, the lists are ANDed."""
    clauses: list[dict[str, Any]] = []
    if filters.media_types:
        clauses.append({"terms": {"media_type": [media.value for media in filters.media_types]}})
    if filters.asset_ids:
        clauses.append({"terms": {"asset_id": list(filters.asset_ids)}})
    if filters.modalities:
        clauses.append({"terms": {"modality": [modality.value for modality in filters.modalities]}})
    if filters.languages:
        clauses.append({"terms": {"language": list(filters.languages)}})
    return clauses


def normalised(vector: Sequence[float], dimensions: int) -> list[float]:
    """``vector`` scaled to length 1; rejects vectors no cosine can be computed for."""
    array = np.asarray(vector, dtype=np.float64)
    if array.shape != (dimensions,):
        raise ValueError(f"expected a vector of {dimensions} dimensions, got shape {array.shape}")
    norm = float(np.linalg.norm(array))
    if not np.all(np.isfinite(array)) or norm == 0.0:
        raise ValueError("vector must be finite and non-zero")
    # knn_vector stores float32: send each as the shortest decimal that is that float32
    # ("0.6", not "0.6000000238418579"), which keeps bulk bodies ~40% smaller.
    return [float(str(x)) for x in (array / norm).astype(np.float32)]


def cosine_from_score(score: float) -> float:
    """OpenSearch scores cosinesimil hits ``(2 - (1 - cos)) / 2``; this undoes that."""
    return min(max(2.0 * score - 1.0, -1.0), 1.0)


def ndjson(lines: Iterable[dict[str, Any]]) -> str:
    """A bulk body: one JSON object per line, the last line ending in a newline too."""
    return "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)


def _describe(error: TransportError) -> str:
    info = error.info
    reason = ""
    if isinstance(info, dict):
        detail = info.get("error")
        if isinstance(detail, dict):
            reason = str(detail.get("reason") or "")
        elif detail:
            reason = str(detail)
    return f"HTTP {error.status_code} {error.error}" + (f": {reason}" if reason else "")


def _item_reason(result: dict[str, Any]) -> str:
    error = result.get("error")
    if isinstance(error, dict):
        return f"{error.get('type', 'error')}: {error.get('reason', '')}"
    return str(error or result.get("result") or "unknown")


Action = tuple[dict[str, Any], dict[str, Any] | None]  # bulk metadata line, document line (None for deletes)


class OpenSearchMomentIndex(MomentIndex):
    """Moments in an OpenSearch index: BM25 ``match`` queries and filtered k-NN."""

    def __init__(self, client: OpenSearch, config: OpenSearchConfig, sleep: Callable[[float], None] = time.sleep):
        """``sleep`` is the backoff's wait (tests record it instead of waiting)."""
        if config.auth is OpenSearchAuth.AUTO:
            raise ValueError("resolve the auth mode with resolve_auth() first")
        if config.dimensions < 1:
            raise ValueError("dimensions must be >= 1")
        self.client = client
        self.config = config
        self.index = config.index
        self._sleep = sleep
        self._ready_lock = threading.Lock()
        self._ready = False

    # -- construction --------------------------------------------------------------------

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        dimensions: int,
        english_dimensions: int | None = None,
        image_dimensions: int | None = None,
    ) -> OpenSearchMomentIndex:
        if not settings.opensearch_url:
            raise ConfigurationError("the OpenSearch index backend needs OPENSEARCH_URL (the domain endpoint)")
        auth = resolve_auth(settings.opensearch_url, settings.opensearch_auth)
        engine = settings.opensearch_knn_engine or ("faiss" if auth is OpenSearchAuth.AOSS else "lucene")
        config = OpenSearchConfig(
            url=settings.opensearch_url,
            index=settings.index_name,
            dimensions=dimensions,
            english_dimensions=english_dimensions,
            image_dimensions=image_dimensions,
            auth=auth,
            region=settings.region,
            engine=engine,
            hnsw_m=settings.opensearch_hnsw_m,
            ef_construction=settings.opensearch_ef_construction,
            ef_search=settings.opensearch_ef_search,
            shards=settings.opensearch_shards,
            replicas=settings.opensearch_replicas,
            timeout_s=settings.opensearch_timeout_s,
            max_attempts=settings.opensearch_max_attempts,
            bulk_documents=settings.opensearch_bulk_documents,
        )
        return cls(build_client(config), config)

    # -- requests ------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> None:
        # Full jitter: concurrent writers that were throttled together do not retry together.
        ceiling = min(self.config.backoff_max_s, self.config.backoff_base_s * 2 ** (attempt - 1))
        self._sleep(random.uniform(0.0, ceiling))

    def _call(self, what: str, operation: Callable[[], T]) -> T:
        """Runs a request, retrying throttling, 5xx and connection failures; other errors
        (4xx, 404 included) are raised as they are for the caller to interpret."""
        last: TransportError | None = None
        for attempt in range(1, self.config.max_attempts + 1):
            try:
                return operation()
            except OpenSearchConnectionError as error:  # before TransportError: it is a subclass
                last = error
            except TransportError as error:
                if not isinstance(error.status_code, int) or error.status_code not in RETRYABLE_STATUSES:
                    raise
                last = error
            if attempt < self.config.max_attempts:
                self._backoff(attempt)
        assert last is not None
        detail = _describe(last) if isinstance(last.status_code, int) else f"connection failed: {last.error}"
        raise TransientError(f"OpenSearch {what} failed after {self.config.max_attempts} attempts: {detail}") from last

    def _rejected(self, what: str, error: TransportError) -> IndexRejectedError:
        return IndexRejectedError(f"OpenSearch rejected the {what}: {_describe(error)}")

    def _search(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The hits of a search; an index nobody has written to yet has none."""
        try:
            response = self._call("search", lambda: self.client.search(index=self.index, body=body))
        except NotFoundError:
            return []
        hits: list[dict[str, Any]] = response["hits"]["hits"]
        return hits

    # -- the index itself ------------------------------------------------------------------

    def ensure_index(self) -> None:
        """Installs the template and creates the index if missing; checks an existing one's
        vector dimensions. Runs once per process, before the first write."""
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            body = index_body(self.config)
            try:
                if not self.config.serverless:
                    template = {"index_patterns": [self.index], "priority": 100, "template": body}
                    self._call(
                        "template update",
                        lambda: self.client.indices.put_index_template(name=self.config.template_name, body=template),
                    )
                exists = self._call("index lookup", lambda: self.client.indices.exists(index=self.index))
                if exists:
                    self._check_dimensions()
                    self._call(
                        "mapping update",
                        lambda: self.client.indices.put_mapping(
                            index=self.index, body={"properties": added_properties(self.config)}
                        ),
                    )
                else:
                    try:
                        self._call("index creation", lambda: self.client.indices.create(index=self.index, body=body))
                    except TransportError as error:
                        if error.error != "resource_already_exists_exception":  # another writer won
                            raise
            except TransportError as error:  # retryable failures were already a TransientError
                raise self._rejected("index setup", error) from error
            self._ready = True

    def _check_dimensions(self) -> None:
        mapping = self._call("mapping lookup", lambda: self.client.indices.get_mapping(index=self.index))
        for index_mapping in mapping.values():
            vector = index_mapping.get("mappings", {}).get("properties", {}).get("vector", {})
            dimension = vector.get("dimension")
            if dimension is not None and int(dimension) != self.config.dimensions:
                raise ConfigurationError(
                    f"OpenSearch index {self.index!r} holds {dimension}-dimensional vectors, but "
                    f"{self.config.dimensions} dimensions were configured; re-index with the new model"
                )

    # -- writes --------------------------------------------------------------------------

    def _document(self, moment: Moment) -> dict[str, Any]:
        document = moment.model_dump(mode="json", exclude=set(_VECTOR_FIELDS))
        document["embedding_model"] = moment.embedding_model
        if moment.vector is not None:
            document["vector"] = normalised(moment.vector, self.config.dimensions)
        if moment.english_vector is not None:
            document["english_vector"] = normalised(
                moment.english_vector, self.config.english_dimensions or self.config.dimensions
            )
            document["english_model"] = moment.english_model
        if moment.image_vector is not None:
            if not self.config.image_dimensions:
                raise ConfigurationError("a moment carries an image vector, but no image_dimensions were configured")
            document["image_vector"] = normalised(moment.image_vector, self.config.image_dimensions)
            document["image_model"] = moment.image_model
        return document

    def _bulk(self, actions: list[Action], refresh: bool) -> list[dict[str, Any]]:
        """Sends ``actions``, resending only throttled or failed items; returns each action's
        result in order. ``refresh`` waits until the writes are searchable (domains only)."""
        results: list[dict[str, Any] | None] = [None] * len(actions)
        pending = list(range(len(actions)))
        params = {"refresh": "wait_for"} if refresh and not self.config.serverless else {}
        for attempt in range(1, self.config.max_attempts + 1):
            lines: list[dict[str, Any]] = []
            for position in pending:
                meta, document = actions[position]
                lines.append(meta)
                if document is not None:
                    lines.append(document)
            body = ndjson(lines)
            try:
                response = self._call(
                    "bulk write", functools.partial(self.client.bulk, body=body, index=self.index, params=params)
                )
            except TransportError as error:
                raise self._rejected("bulk write", error) from error
            retry: list[int] = []
            rejected: list[str] = []
            for position, item in zip(pending, response["items"], strict=True):
                ((operation, result),) = item.items()
                status = int(result.get("status", 0))
                if status < 300 or (operation == "delete" and status == 404):
                    results[position] = result  # a delete of what is already gone did its job
                elif status in RETRYABLE_STATUSES:
                    retry.append(position)
                else:
                    rejected.append(f"{result.get('_id', '?')}: HTTP {status} {_item_reason(result)}")
            if rejected:
                raise IndexRejectedError(
                    f"OpenSearch rejected {len(rejected)} of {len(pending)} bulk items; first: {rejected[0]}"
                )
            if not retry:
                return [result for result in results if result is not None]
            pending = retry
            if attempt < self.config.max_attempts:
                self._backoff(attempt)
        raise TransientError(
            f"OpenSearch kept throttling or failing {len(pending)} bulk items after {self.config.max_attempts} attempts"
        )

    def _write(self, actions: list[Action]) -> list[dict[str, Any]]:
        """Bulk requests of at most ``bulk_documents`` actions; the last one waits for refresh."""
        size = self.config.bulk_documents
        results: list[dict[str, Any]] = []
        for start in range(0, len(actions), size):
            chunk = actions[start : start + size]
            results += self._bulk(chunk, refresh=start + size >= len(actions))
        return results

    def upsert(self, moments: Sequence[Moment]) -> int:
        latest = list({moment.moment_id: moment for moment in moments}.values())  # the last one wins
        if not latest:
            return 0
        documents = [self._document(moment) for moment in latest]  # bad vectors fail before any write
        self.ensure_index()
        if self.config.custom_ids:
            self._write([({"index": {"_id": m.moment_id}}, doc) for m, doc in zip(latest, documents, strict=True)])
            return len(latest)
        previous = self._ids_for_moments([moment.moment_id for moment in latest])
        self._write([({"index": {}}, document) for document in documents])
        if previous:
            self._write([({"delete": {"_id": doc_id}}, None) for doc_id in previous])
        return len(latest)

    def _ids_for_moments(self, moment_ids: list[str]) -> list[str]:
        found: list[str] = []
        for start in range(0, len(moment_ids), TERMS_CHUNK):
            chunk = moment_ids[start : start + TERMS_CHUNK]
            body = {"size": LIST_PAGE, "_source": False, "query": {"terms": {"moment_id": chunk}}}
            found += [hit["_id"] for hit in self._search(body)]
        return found

    def _documents_of(self, asset_id: str) -> list[tuple[str, str]]:
        """(_id, moment_id) of every document of an asset, paged in moment_id order."""
        found: list[tuple[str, str]] = []
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {
                "size": LIST_PAGE,
                "_source": ["moment_id"],
                "query": {"bool": {"filter": [{"term": {"asset_id": asset_id}}]}},
                "sort": [{"moment_id": "asc"}],
                "track_total_hits": False,
            }
            if after is not None:
                body["search_after"] = after
            hits = self._search(body)
            found += [(hit["_id"], hit["_source"]["moment_id"]) for hit in hits]
            if len(hits) < LIST_PAGE:
                return found
            after = hits[-1]["sort"]

    def _delete(self, document_ids: list[str]) -> int:
        if not document_ids:
            return 0
        results = self._write([({"delete": {"_id": doc_id}}, None) for doc_id in document_ids])
        return sum(1 for result in results if result.get("result") == "deleted")

    def delete_asset(self, asset_id: str) -> int:
        return self._delete([doc_id for doc_id, _ in self._documents_of(asset_id)])

    def delete_stale(self, asset_id: str, keep_ids: set[str]) -> int:
        return self._delete([doc_id for doc_id, moment_id in self._documents_of(asset_id) if moment_id not in keep_ids])

    # -- reads ---------------------------------------------------------------------------

    @staticmethod
    def _sources(hits: list[dict[str, Any]]) -> list[tuple[dict[str, Any], float]]:
        """Each moment's stored fields and its score, once per moment."""
        seen: set[str] = set()
        sources: list[tuple[dict[str, Any], float]] = []
        for hit in hits:
            source = hit["_source"]
            if source.get("moment_id") in seen:  # a Serverless duplicate between write and delete
                continue
            seen.add(source.get("moment_id"))
            sources.append((source, float(hit.get("_score") or 0.0)))
        return sources

    def keyword(self, text: str, k: int, filters: SearchFilters) -> list[SearchHit]:
        if k < 1 or not text.strip():
            return []
        body = {
            "size": k,
            "_source": _SOURCE_EXCLUDES,
            "track_total_hits": False,
            "query": {
                "bool": {
                    # Any term may match (OR), ranked by BM25: the embedded backend's semantics.
                    "must": [{"match": {"text": {"query": text, "operator": "or"}}}],
                    "filter": filter_clauses(filters),
                }
            },
        }
        return [
            SearchHit.model_validate({**source, "score": score}) for source, score in self._sources(self._search(body))
        ]

    def semantic(
        self,
        vector: Sequence[float],
        k: int,
        filters: SearchFilters,
        embedding_model: str | None = None,
        *,
        field: VectorField = VectorField.TEXT,
    ) -> list[SearchHit]:
        dimensions = {
            VectorField.TEXT: self.config.dimensions,
            VectorField.ENGLISH: self.config.english_dimensions or self.config.dimensions,
            VectorField.IMAGE: self.config.image_dimensions,
        }[field]
        if not dimensions:
            return []  # no image-text model was set: no document has such a vector
        model_field = field.model_field
        query_vector = normalised(vector, dimensions)
        if k < 1:
            return []
        # Lucene's HNSW explores k candidates per segment (its ef): ask for more, keep ``size``.
        candidates = max(k, self.config.ef_search) if self.config.engine == "lucene" else k
        knn: dict[str, Any] = {"vector": query_vector, "k": candidates}
        clauses = filter_clauses(filters)
        if embedding_model is not None:
            clauses.append({"term": {model_field: embedding_model}})
        if clauses:
            knn["filter"] = {"bool": {"filter": clauses}}  # applied during the graph search
        body = {"size": k, "_source": _SOURCE_EXCLUDES, "query": {"knn": {field.value: knn}}}
        hits = self._sources(self._search(body))
        return [SearchHit.model_validate({**source, "score": cosine_from_score(score)}) for source, score in hits]

    def count(self, asset_id: str | None = None) -> int:
        body: dict[str, Any] = {"query": {"term": {"asset_id": asset_id}} if asset_id else {"match_all": {}}}
        try:
            response = self._call("count", lambda: self.client.count(index=self.index, body=body))
        except NotFoundError:
            return 0
        return int(response["count"])

    def asset_moments(self, asset_id: str, limit: int = 200) -> list[Moment]:
        """An asset's moments in reading order (page, then time), at most ``limit``."""
        body = {
            "size": max(1, min(limit, MAX_LISTED_MOMENTS)),
            "_source": _SOURCE_EXCLUDES,
            "query": {"bool": {"filter": [{"term": {"asset_id": asset_id}}]}},
            "sort": [
                {"page": {"order": "asc", "missing": "_first"}},
                {"start": {"order": "asc", "missing": "_first"}},
                {"moment_id": "asc"},
            ],
        }
        return [Moment.model_validate(source) for source, _ in self._sources(self._search(body))]


def build_client(config: OpenSearchConfig) -> OpenSearch:
    """An OpenSearch client for ``config.url``, signing with SigV4 for ``es``/``aoss``.

    Transport retries are off: ``OpenSearchMomentIndex`` retries itself, with jitter, on 429 too.
    """
    parsed = urlparse(config.url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigurationError(f"OPENSEARCH_URL must be an http(s) URL, got {config.url!r}")
    https = parsed.scheme == "https"
    http_auth: Any = None
    if config.auth in (OpenSearchAuth.ES, OpenSearchAuth.AOSS):
        import boto3
        from requests_aws4auth import AWS4Auth  # type: ignore[import-untyped]

        credentials = boto3.Session().get_credentials()
        if credentials is None:
            raise ConfigurationError("no AWS credentials found to sign OpenSearch requests")
        # Refreshable: a Lambda's role credentials rotate while the container lives on.
        http_auth = AWS4Auth(refreshable_credentials=credentials, region=config.region, service=config.auth.value)
    elif parsed.username:
        http_auth = (unquote(parsed.username), unquote(parsed.password or ""))
    host: dict[str, Any] = {
        "host": parsed.hostname,
        "port": parsed.port or (443 if https else 80),
        "scheme": parsed.scheme,
    }
    if parsed.path.strip("/"):
        host["url_prefix"] = parsed.path.rstrip("/")
    return OpenSearch(
        hosts=[host],
        http_auth=http_auth,
        use_ssl=https,
        verify_certs=https,
        connection_class=RequestsHttpConnection,
        timeout=config.timeout_s,
        max_retries=0,
        retry_on_timeout=False,
        pool_maxsize=16,
    )
