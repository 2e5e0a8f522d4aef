"""The embedded profile's moment index: one LanceDB table in a local directory.

Several processes may open the same directory (the runner writes while a CLI searches). Every
handle re-reads the latest table version before each operation, concurrent ``merge_insert``
commits of the same ``moment_id`` are detected by Lance through the table's unenforced primary
key (and retried), and the steps that must not race (creating the table and its indexes,
compaction) run under a file lock next to the table.

LanceDB behaviour this relies on (checked against lancedb 0.40):

* Rows written after an index was built are still found: FTS and vector queries scan the
  unindexed fragments and merge them with the index results (unless ``fast_search`` is set,
  which this module never does). BM25 statistics of unindexed rows are approximate until the
  index is refreshed, which :meth:`LanceMomentIndex.optimize` does.
* A full-text query fails outright when the column has no inverted index, so the index is
  created together with the table (it may be built over zero rows).
* Every write commits a new version; old versions and the files only they reference stay on
  disk until ``optimize`` prunes them, so writes trigger a best-effort optimize now and then.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

import lancedb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from filelock import FileLock, Timeout
from lancedb.index import FTS, BTree, HnswSq
from lancedb.query import FullTextOperator, MatchQuery
from lancedb.table import LanceTable

from medialens.adapters.index.base import MomentIndex
from medialens.adapters.index.keywords import keyword_text
from medialens.domain.moments import Moment, VectorField
from medialens.domain.search import SearchFilters, SearchHit
from medialens.errors import ConfigurationError, TransientError

log = logging.getLogger(__name__)

T = TypeVar("T")

# BM25 reads "keyword_text" (adapters.index.keywords: CJK as bigrams); tables from before it
# had their full-text index, "text_idx", on "text", which opening them replaces.
FTS_INDEX, FTS_COLUMN = "keyword_text_idx", "keyword_text"
OLD_FTS_INDEX = "text_idx"
VECTOR_INDEX = "vector_idx"
VECTOR_INDEXES = {"vector": VECTOR_INDEX, "english_vector": "english_vector_idx", "image_vector": "image_vector_idx"}
# Scalar indexes that turn the key lookups of merge_insert, delete and filters into index probes.
SCALAR_INDEXES = {"moment_id": "moment_id_idx", "asset_id": "asset_id_idx"}

# Lance reads the primary key from this field metadata; it is checked, never written, here.
_PRIMARY_KEY_METADATA = b"lance-schema:unenforced-primary-key"

OPTIMIZE_ATTEMPTS = 3

# Every column but the vector: hits do not need 1.5 KB of floats each.
RESULT_COLUMNS = [
    "moment_id",
    "asset_id",
    "source",
    "media_type",
    "modality",
    "text",
    "start",
    "end",
    "page",
    "section",
    "confidence",
    "model_versions",
    "pipeline_version",
    "narration_uri",
    "narration_start",
    "narration_end",
    "language",
]


# Columns added since tables were first created, appended in this order (nullable, so an old
# table gains them empty without rewriting its rows).
def added_fields(english_dimensions: int, image_dimensions: int | None = None) -> tuple[pa.Field, ...]:
    """``image_dimensions``: the image-text model's, when one is set (its columns come with it)."""
    image = (
        (pa.field("image_vector", pa.list_(pa.float32(), image_dimensions)), pa.field("image_model", pa.string()))
        if image_dimensions
        else ()
    )
    return (
        pa.field("narration_uri", pa.string()),
        pa.field("narration_start", pa.float64()),
        pa.field("narration_end", pa.float64()),
        pa.field("language", pa.string()),
        # The vector spaces of "vector" and "english_vector" (domain.moments.vector_space).
        pa.field("embedding_model", pa.string()),
        pa.field("english_vector", pa.list_(pa.float32(), english_dimensions)),
        pa.field("english_model", pa.string()),
        pa.field("keyword_text", pa.string()),
        *image,
    )


def moment_schema(
    dimensions: int, english_dimensions: int | None = None, image_dimensions: int | None = None
) -> pa.Schema:
    """The table's Arrow schema; ``model_versions`` is stored as a JSON object string."""
    return pa.schema(
        [
            pa.field("moment_id", pa.string(), nullable=False),
            pa.field("asset_id", pa.string(), nullable=False),
            pa.field("source", pa.string(), nullable=False),
            pa.field("media_type", pa.string(), nullable=False),
            pa.field("modality", pa.string(), nullable=False),
            pa.field("text", pa.string(), nullable=False),
            pa.field("start", pa.float64()),
            pa.field("end", pa.float64()),
            pa.field("page", pa.int32()),
            pa.field("section", pa.string()),
            pa.field("vector", pa.list_(pa.float32(), dimensions)),
            pa.field("confidence", pa.float64()),
            pa.field("model_versions", pa.string(), nullable=False),
            pa.field("pipeline_version", pa.string(), nullable=False),
            # Added after the first release: older tables get them (empty) when opened.
            *added_fields(english_dimensions or dimensions, image_dimensions),
        ]
    )


def sql_string(value: str) -> str:
    """A SQL string literal: single quotes doubled, so no value can end the literal early."""
    return "'" + value.replace("'", "''") + "'"


def _in_clause(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(sql_string(value) for value in values)})"


def filters_to_sql(filters: SearchFilters) -> str | None:
    """The ``where`` predicate for ``filters``, or None when nothing is filtered."""
    clauses: list[str] = []
    if filters.media_types:
        clauses.append(_in_clause("media_type", [media.value for media in filters.media_types]))
    if filters.asset_ids:
        clauses.append(_in_clause("asset_id", filters.asset_ids))
    if filters.modalities:
        clauses.append(_in_clause("modality", [modality.value for modality in filters.modalities]))
    if filters.languages:
        clauses.append(_in_clause("language", filters.languages))
    return " AND ".join(clauses) or None


def unit_vector(vector: Sequence[float] | npt.NDArray[np.floating[Any]], dimensions: int) -> npt.NDArray[np.float32]:
    """``vector`` scaled to length 1 (so cosine is a dot product); rejects unusable vectors."""
    array = np.asarray(vector, dtype=np.float64)
    if array.shape != (dimensions,):
        raise ValueError(f"expected a vector of {dimensions} dimensions, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("vector has non-finite values")
    norm = float(np.linalg.norm(array))
    if norm == 0.0:
        raise ValueError("vector has zero length")
    return (array / norm).astype(np.float32)


def small_fragment_count(table: LanceTable) -> int:
    """Fragments small enough for compaction to merge: each upsert or update adds one."""
    # Typed as a dataclass but returned as a dict at run time: read it either way.
    stats: Any = table.stats()
    fragments = stats["fragment_stats"] if isinstance(stats, dict) else stats.fragment_stats
    return int(fragments["num_small_fragments"] if isinstance(fragments, dict) else fragments.num_small_fragments)


def _is_commit_conflict(error: BaseException) -> bool:
    # Lance reports an exhausted conflict retry only through its message.
    text = str(error).lower()
    return "conflict" in text or "concurrent" in text


class LanceMomentIndex(MomentIndex):
    """Moments in a LanceDB table: native BM25 full-text search and cosine k-NN.

    Vector search is exact (flat) while the table has fewer than ``ann_threshold`` rows;
    :meth:`optimize` builds an IVF_HNSW_SQ index once it is larger, queried with ``nprobes``,
    ``ef`` and a ``refine_factor`` that re-ranks candidates on the full vectors.
    """

    def __init__(
        self,
        path: Path,
        table: str = "moments",
        dimensions: int = 384,
        *,
        english_dimensions: int | None = None,
        image_dimensions: int | None = None,
        ann_threshold: int = 20_000,
        nprobes: int = 20,
        ef: int = 1500,
        refine_factor: int = 5,
        version_retention: timedelta = timedelta(hours=1),
        maintain_after_small_fragments: int | None = 32,
        maintain_after_unindexed_rows: int = 20_000,
    ) -> None:
        """``version_retention``: how long superseded versions (and the files only they use)
        are kept, so a search still running on one is not pulled from under it.
        ``maintain_after_*``: a write that leaves this many small fragments or unindexed rows
        runs :meth:`optimize` if no other process is; None turns that off."""
        if dimensions < 1:
            raise ValueError("dimensions must be >= 1")
        if ann_threshold < 256:
            raise ValueError("ann_threshold must be >= 256: the quantizer trains on the table")
        if min(nprobes, ef, refine_factor) < 1:
            raise ValueError("nprobes, ef and refine_factor must be >= 1")
        self.path = path
        self.table_name = table
        self.dimensions = dimensions
        # The English-trained encoder's vectors (None: the same size as the multilingual ones).
        self.english_dimensions = english_dimensions or dimensions
        # An image-text model's image vectors: None, no such columns (none is set).
        self.image_dimensions = image_dimensions
        self.ann_threshold = ann_threshold
        self.nprobes = nprobes
        self.ef = ef
        self.refine_factor = refine_factor
        self.version_retention = version_retention
        self.maintain_after_small_fragments = maintain_after_small_fragments
        self.maintain_after_unindexed_rows = maintain_after_unindexed_rows
        self.schema = moment_schema(dimensions, self.english_dimensions, image_dimensions)
        self._added_fields = added_fields(self.english_dimensions, image_dimensions)
        path.mkdir(parents=True, exist_ok=True)
        # An interval of 0 makes every call check for versions other processes committed.
        self._db = lancedb.connect(str(path), read_consistency_interval=timedelta(0))
        self._file_lock = FileLock(str(path / f"{table}.lock"))
        self._open_lock = threading.Lock()
        self._table: LanceTable | None = None
        self._fts_ready = False
        self._writable = False

    # -- opening -------------------------------------------------------------------------

    def _open(self) -> LanceTable | None:
        """The table, or None while no process has created it yet."""
        with self._open_lock:
            if self._table is not None:
                return self._table
            if self.table_name not in self._db.list_tables().tables:
                return None
            try:
                opened = self._db.open_table(self.table_name)
            except (ValueError, RuntimeError) as error:
                # Listed but without a first manifest: a creator is between its two steps.
                if "not found" in str(error).lower():
                    return None
                raise
            if not isinstance(opened, LanceTable):
                raise ConfigurationError(f"{self.path} is not a local LanceDB directory")
            self._check_schema(opened)
            self._add_missing_columns(opened)
            self._table = opened
            return opened

    def _vector_columns(self) -> dict[str, int]:
        """Each vector column this index holds, with its dimensions."""
        columns = {VectorField.TEXT.value: self.dimensions, VectorField.ENGLISH.value: self.english_dimensions}
        if self.image_dimensions:
            columns[VectorField.IMAGE.value] = self.image_dimensions
        return columns

    def _check_schema(self, table: LanceTable) -> None:
        for column, dimensions in self._vector_columns().items():
            if column not in table.schema.names:
                continue  # added when the table is opened
            vector_type = table.schema.field(column).type
            if getattr(vector_type, "list_size", None) != dimensions:
                raise ConfigurationError(
                    f"index table {self.table_name!r} holds {column} of type {vector_type}, but "
                    f"{dimensions} dimensions were configured; re-index with the new model"
                )

    def _add_missing_columns(self, table: LanceTable) -> None:
        """A table created by an older release gains the columns added since (empty), and its
        full-text index moves from "text" to "keyword_text"."""
        if all(field.name in table.schema.names for field in self._added_fields) and (
            OLD_FTS_INDEX not in self._index_names(table)
        ):
            return
        with self._exclusive():
            table.checkout_latest()  # type: ignore[no-untyped-call]
            missing = [field for field in self._added_fields if field.name not in table.schema.names]
            if missing:
                table.add_columns(missing)
            if OLD_FTS_INDEX in self._index_names(table):
                # Rows written before keyword_text existed read as their text (CJK runs unsplit
                # until they are re-run); searches keep working on the rebuilt index.
                table.update(where="keyword_text IS NULL", values_sql={"keyword_text": "text"})
                table.create_index(FTS_COLUMN, config=self._fts_config(), name=FTS_INDEX)
                table.drop_index(OLD_FTS_INDEX)

    @contextmanager
    def _exclusive(self, wait: bool = True) -> Iterator[bool]:
        """Holds the directory's file lock; yields False when ``wait`` is off and it is taken."""
        try:
            self._file_lock.acquire(timeout=-1 if wait else 0)
        except Timeout:
            yield False
            return
        try:
            yield True
        finally:
            self._file_lock.release()

    def _open_for_write(self) -> LanceTable:
        """The table, created with its primary key and full-text index if it does not exist."""
        table = self._open()
        if table is not None and self._writable:
            return table
        with self._exclusive():
            table = self._open()
            if table is None:
                self._db.create_table(self.table_name, schema=self.schema, exist_ok=True)
                table = self._open()
                if table is None:
                    raise RuntimeError(f"index table {self.table_name!r} vanished after creation")
            # A creator that died between these steps left them undone; whoever writes next
            # finishes them, under the lock so that two processes never both do.
            if not any(_PRIMARY_KEY_METADATA in key for key in table.schema.field("moment_id").metadata or {}):
                # Without it, two processes inserting the same new moment_id both succeed.
                table.set_unenforced_primary_key("moment_id")
            if FTS_INDEX not in self._index_names(table):
                table.create_index(FTS_COLUMN, config=self._fts_config(), name=FTS_INDEX)
            self._writable = self._fts_ready = True
            return table

    @staticmethod
    def _fts_config() -> FTS:
        # English stemming and stop words, case- and accent-folded; no positions: no phrase
        # queries are offered and they would make the index several times larger.
        return FTS(
            with_position=False,
            base_tokenizer="simple",
            language="English",
            lower_case=True,
            stem=True,
            remove_stop_words=True,
            ascii_folding=True,
        )

    @staticmethod
    def _index_names(table: LanceTable) -> set[str]:
        return {str(index.name) for index in table.list_indices()}

    # -- writes --------------------------------------------------------------------------

    @staticmethod
    def _vector_column(vectors: Sequence[Sequence[float] | None], dimensions: int) -> pa.FixedSizeListArray:
        matrix = np.zeros((len(vectors), dimensions), dtype=np.float32)
        missing = np.ones(len(vectors), dtype=bool)
        for row, vector in enumerate(vectors):
            if vector is not None:
                matrix[row] = unit_vector(vector, dimensions)
                missing[row] = False
        return pa.FixedSizeListArray.from_arrays(
            pa.array(matrix.ravel(), type=pa.float32()), dimensions, mask=pa.array(missing)
        )

    def _to_arrow(self, moments: Sequence[Moment]) -> pa.Table:
        vectors = self._vector_column([m.vector for m in moments], self.dimensions)
        columns: dict[str, pa.Array] = {
            "moment_id": pa.array([m.moment_id for m in moments], pa.string()),
            "asset_id": pa.array([m.asset_id for m in moments], pa.string()),
            "source": pa.array([m.source for m in moments], pa.string()),
            "media_type": pa.array([m.media_type.value for m in moments], pa.string()),
            "modality": pa.array([m.modality.value for m in moments], pa.string()),
            "text": pa.array([m.text for m in moments], pa.string()),
            "keyword_text": pa.array([keyword_text(m.text) for m in moments], pa.string()),
            "start": pa.array([m.start for m in moments], pa.float64()),
            "end": pa.array([m.end for m in moments], pa.float64()),
            "page": pa.array([m.page for m in moments], pa.int32()),
            "section": pa.array([m.section for m in moments], pa.string()),
            "vector": vectors,
            "confidence": pa.array([m.confidence for m in moments], pa.float64()),
            "model_versions": pa.array([json.dumps(m.model_versions, sort_keys=True) for m in moments]),
            "pipeline_version": pa.array([m.pipeline_version for m in moments], pa.string()),
            "narration_uri": pa.array([m.narration_uri for m in moments], pa.string()),
            "narration_start": pa.array([m.narration_start for m in moments], pa.float64()),
            "narration_end": pa.array([m.narration_end for m in moments], pa.float64()),
            "language": pa.array([m.language for m in moments], pa.string()),
            "embedding_model": pa.array([m.embedding_model for m in moments], pa.string()),
            "english_vector": self._vector_column([m.english_vector for m in moments], self.english_dimensions),
            "english_model": pa.array([m.english_model for m in moments], pa.string()),
        }
        if self.image_dimensions:
            columns["image_vector"] = self._vector_column([m.image_vector for m in moments], self.image_dimensions)
            columns["image_model"] = pa.array([m.image_model for m in moments], pa.string())
        elif any(m.image_vector for m in moments):
            raise ConfigurationError(
                "a moment carries an image vector, but this index was opened without image_dimensions"
            )
        return pa.Table.from_arrays([columns[name] for name in self.schema.names], schema=self.schema)

    def _write(self, operation: Callable[[], T]) -> T:
        try:
            return operation()
        except (RuntimeError, OSError) as error:
            if _is_commit_conflict(error):
                raise TransientError(f"moment index busy: {error}") from error
            raise

    def upsert(self, moments: Sequence[Moment]) -> int:
        # merge_insert refuses two source rows with one key; the last one given wins.
        latest = list({moment.moment_id: moment for moment in moments}.values())
        if not latest:
            return 0  # an empty commit would still add a version
        data = self._to_arrow(latest)
        table = self._open_for_write()
        result = self._write(
            lambda: (
                table.merge_insert("moment_id")
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute(data, on_bad_vectors="null")  # nulls are moments without a vector
            )
        )
        self._maybe_maintain(table)
        return int(result.num_inserted_rows) + int(result.num_updated_rows)

    def _delete(self, predicate: str) -> int:
        table = self._open()
        # Deleting nothing would still commit a version, so count first.
        if table is None or table.count_rows(predicate) == 0:
            return 0
        table = self._open_for_write()
        result = self._write(lambda: table.delete(predicate))
        self._maybe_maintain(table)
        return int(cast(Any, result).num_deleted_rows)  # the type stub omits this field

    def delete_asset(self, asset_id: str) -> int:
        return self._delete(f"asset_id = {sql_string(asset_id)}")

    def delete_stale(self, asset_id: str, keep_ids: set[str]) -> int:
        predicate = f"asset_id = {sql_string(asset_id)}"
        if keep_ids:
            predicate += f" AND NOT ({_in_clause('moment_id', sorted(keep_ids))})"
        return self._delete(predicate)

    # -- upkeep --------------------------------------------------------------------------

    def _maybe_maintain(self, table: LanceTable) -> None:
        """Optimizes after many small writes, skipping when another process already is."""
        if self.maintain_after_small_fragments is None:
            return
        small_fragments = small_fragment_count(table)
        fts = table.index_stats(FTS_INDEX)
        unindexed = int(fts.num_unindexed_rows) if fts is not None else 0
        if small_fragments < self.maintain_after_small_fragments and unindexed < self.maintain_after_unindexed_rows:
            return
        with self._exclusive(wait=False) as acquired:
            if not acquired:
                return
            try:
                self._optimize(table)
            except (RuntimeError, OSError, ValueError):
                # The write itself is committed; upkeep is retried after a later write.
                log.warning("moment index upkeep failed; will retry later", exc_info=True)

    def optimize(self) -> None:
        """Compacts fragments, prunes versions older than ``version_retention``, refreshes every
        index with the rows written since, and builds missing indexes (ANN once large)."""
        table = self._open()
        if table is None:
            return
        with self._exclusive():
            self._write(lambda: self._optimize(table))

    def _optimize(self, table: LanceTable) -> None:
        # Compaction first, so indexes created below are built over the compacted fragments.
        for attempt in range(1, OPTIMIZE_ATTEMPTS + 1):
            try:
                table.optimize(cleanup_older_than=self.version_retention)
                break
            except RuntimeError as error:
                # A compaction loses to a concurrent upsert that rewrote one of its fragments.
                if attempt == OPTIMIZE_ATTEMPTS or not _is_commit_conflict(error):
                    raise
                time.sleep(0.1 * attempt)
        names = self._index_names(table)
        for column, name in SCALAR_INDEXES.items():
            if name not in names:
                table.create_index(column, config=BTree(), name=name)
        for column, name in VECTOR_INDEXES.items():
            if column not in table.schema.names:
                continue  # the image vectors of an index opened without an image-text model
            if name not in names and table.count_rows(f"{column} IS NOT NULL") >= self.ann_threshold:
                # IVF_HNSW_SQ: one partition per ~1M rows, an HNSW graph per partition over 8-bit
                # scalar-quantized vectors; refine_factor at query time restores exact ordering.
                table.create_index(column, config=HnswSq(distance_type="cosine"), name=name)

    # -- reads ---------------------------------------------------------------------------

    def _read(self, query: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        try:
            return query()
        except (RuntimeError, OSError):
            # A search that started on a version whose files a concurrent optimize pruned
            # fails once; the retry reads the latest version.
            return query()

    @staticmethod
    def _fields(row: dict[str, Any]) -> dict[str, Any]:
        fields = {column: row[column] for column in RESULT_COLUMNS}
        fields["model_versions"] = json.loads(row["model_versions"]) if row["model_versions"] else {}
        return fields

    def _fts_available(self, table: LanceTable) -> bool:
        if not self._fts_ready:
            self._fts_ready = FTS_INDEX in self._index_names(table)
        return self._fts_ready

    def keyword(self, text: str, k: int, filters: SearchFilters) -> list[SearchHit]:
        table = self._open()
        # Until its creator has built the full-text index the table is empty anyway.
        if table is None or k < 1 or not text.strip() or not self._fts_available(table):
            return []
        where = filters_to_sql(filters)
        # A MatchQuery is never parsed as query syntax (quotes or AND in the text are words);
        # any term may match (OR), exact terms only: BM25 as users know it.
        match = MatchQuery(
            keyword_text(text),
            FTS_COLUMN,
            boost=1.0,
            fuzziness=0,
            max_expansions=50,
            operator=FullTextOperator.OR,
            prefix_length=0,
            document_granularity=None,
        )

        def run() -> list[dict[str, Any]]:
            query = table.search(match, query_type="fts").select([*RESULT_COLUMNS, "_score"]).limit(k)
            if where:
                query = query.where(where, prefilter=True)
            return list(query.to_list())

        return [SearchHit.model_validate({**self._fields(row), "score": row["_score"]}) for row in self._read(run)]

    def semantic(
        self,
        vector: Sequence[float],
        k: int,
        filters: SearchFilters,
        embedding_model: str | None = None,
        *,
        field: VectorField = VectorField.TEXT,
    ) -> list[SearchHit]:
        dimensions = self._vector_columns().get(field.value)
        if dimensions is None:
            return []  # no image-text model was set: no moment has such a vector
        column, model_column = field.value, field.model_field
        query_vector = unit_vector(vector, dimensions)
        table = self._open()
        if table is None or k < 1:
            return []
        clauses = [c for c in (filters_to_sql(filters),) if c]
        if embedding_model is not None:
            clauses.append(f"{model_column} = {sql_string(embedding_model)}")
        elif field is not VectorField.TEXT:
            clauses.append(f"{column} IS NOT NULL")
        where = " AND ".join(f"({c})" for c in clauses) if clauses else None
        use_ann = table.count_rows() >= self.ann_threshold

        def run() -> list[dict[str, Any]]:
            query = (
                table.search(query_vector, query_type="vector", vector_column_name=column)
                .distance_type("cosine")
                .select([*RESULT_COLUMNS, "_distance"])
                .limit(k)
            )
            if where:
                query = query.where(where, prefilter=True)
            if use_ann:
                # Lance asks the graph for k * refine_factor candidates; ef must cover them.
                ef = max(self.ef, k * self.refine_factor)
                query = query.nprobes(self.nprobes).ef(ef).refine_factor(self.refine_factor)
            else:
                # Small tables are scanned exactly, even if an index is left from a larger past.
                query = query.bypass_vector_index()
            return list(query.to_list())

        hits = []
        for row in self._read(run):
            # Cosine distance is 1 - similarity; float error can step just outside [-1, 1].
            similarity = min(max(1.0 - float(row["_distance"]), -1.0), 1.0)
            hits.append(SearchHit.model_validate({**self._fields(row), "score": similarity}))
        return hits

    def asset_moments(self, asset_id: str, limit: int = 200) -> list[Moment]:
        """One asset's moments in reading order (page, then time): what the asset API lists."""
        table = self._open()
        if table is None or limit < 1:
            return []

        def run() -> list[dict[str, Any]]:
            # Lance has no ORDER BY: read the asset's moments (asset-sized), order them here.
            query = table.search().where(f"asset_id = {sql_string(asset_id)}").select(list(RESULT_COLUMNS))
            return list(query.limit(max(table.count_rows(), 1)).to_list())

        moments = sorted(
            (Moment.model_validate(self._fields(row)) for row in self._read(run)),
            key=lambda m: (m.page or 0, m.start or 0.0, m.moment_id),
        )
        return moments[:limit]

    def count(self, asset_id: str | None = None) -> int:
        table = self._open()
        if table is None:
            return 0
        if asset_id is None:
            return int(table.count_rows())
        return int(table.count_rows(f"asset_id = {sql_string(asset_id)}"))
