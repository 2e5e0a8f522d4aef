"""LanceMomentIndex against a real LanceDB directory: upserts, deletes, BM25 over indexed and
unindexed rows, filters, exact and ANN vector search, and several processes on one directory.

Vectors are deterministic random unit vectors; the expected neighbours come from numpy.
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from medialens.adapters.index import lance
from medialens.adapters.index.lance import (
    FTS_INDEX,
    VECTOR_INDEX,
    LanceMomentIndex,
    added_fields,
    filters_to_sql,
    small_fragment_count,
)
from medialens.domain.assets import MediaType
from medialens.domain.moments import Modality, Moment
from medialens.domain.search import SearchFilters
from medialens.errors import ConfigurationError

pytestmark = pytest.mark.integration

DIMS = 32
NO_FILTER = SearchFilters()


def unit_vectors(count: int, dims: int = DIMS, seed: int = 0) -> npt.NDArray[np.float32]:
    matrix = np.random.default_rng(seed).standard_normal((count, dims)).astype(np.float32)
    normalised: npt.NDArray[np.float32] = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    return normalised


def moment(
    moment_id: str,
    text: str,
    vector: npt.NDArray[np.float32] | None,
    *,
    asset_id: str = "asset-1",
    media_type: MediaType = MediaType.DOCUMENT,
    modality: Modality = Modality.DOCUMENT,
) -> Moment:
    return Moment(
        moment_id=moment_id,
        asset_id=asset_id,
        source=f"s3://drop/incoming/{asset_id}",
        media_type=media_type,
        modality=modality,
        text=text,
        page=1 if media_type is MediaType.DOCUMENT else None,
        start=None if media_type is MediaType.DOCUMENT else 3.5,
        end=None if media_type is MediaType.DOCUMENT else 9.0,
        section="s",
        vector=None if vector is None else vector.tolist(),
        confidence=0.9,
        model_versions={"text_embedding": "test-vectors@0"},
        pipeline_version="1",
    )


def ids(hits: list[Any]) -> list[str]:
    return [hit.moment_id for hit in hits]


def new_index(path: Path, **options: Any) -> LanceMomentIndex:
    # No upkeep behind the test's back unless a test asks for it.
    options.setdefault("maintain_after_small_fragments", None)
    return LanceMomentIndex(path, dimensions=DIMS, **options)


def unindexed_fts_rows(index: LanceMomentIndex) -> int:
    table = index._open()
    assert table is not None
    stats = table.index_stats(FTS_INDEX)
    assert stats is not None
    return int(stats.num_unindexed_rows)


def stored_moment_ids(index: LanceMomentIndex) -> list[str]:
    table = index._open()
    assert table is not None
    return [str(value) for value in table.to_arrow().column("moment_id").to_pylist()]


def test_missing_directory_and_table_read_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "does" / "not" / "exist"
    index = new_index(path)
    assert index.count() == 0
    assert index.count("asset-1") == 0
    assert index.keyword("anything", 5, NO_FILTER) == []
    assert index.semantic(unit_vectors(1)[0].tolist(), 5, NO_FILTER) == []
    assert index.delete_asset("asset-1") == 0
    assert index.delete_stale("asset-1", {"m1"}) == 0
    index.optimize()
    # Reads and no-op deletes create nothing.
    assert not list(path.glob("*.lance"))


def test_upsert_twice_replaces_without_duplicates(tmp_path: Path) -> None:
    vectors = unit_vectors(4)
    index = new_index(tmp_path)
    first = [moment(f"m{i}", f"original wording {i}", vectors[i]) for i in range(3)]
    assert index.upsert(first) == 3
    second = [moment(f"m{i}", f"revised phrasing {i}", vectors[i]) for i in range(3)]
    second.append(moment("m3", "brand new moment", vectors[3]))
    assert index.upsert(second) == 4
    assert index.count() == 4
    assert sorted(stored_moment_ids(index)) == ["m0", "m1", "m2", "m3"]
    assert index.keyword("original", 10, NO_FILTER) == []
    assert sorted(ids(index.keyword("revised", 10, NO_FILTER))) == ["m0", "m1", "m2"]
    [hit] = index.semantic(vectors[1].tolist(), 1, NO_FILTER)
    assert hit.text == "revised phrasing 1"
    assert hit.model_versions == {"text_embedding": "test-vectors@0"}
    assert hit.page == 1
    assert hit.vector is None  # hits leave the vector out


def test_repeated_ids_in_one_batch_keep_the_last(tmp_path: Path) -> None:
    vectors = unit_vectors(2)
    index = new_index(tmp_path)
    written = index.upsert([moment("m0", "first take", vectors[0]), moment("m0", "second take", vectors[1])])
    assert written == 1
    assert stored_moment_ids(index) == ["m0"]
    assert ids(index.keyword("second", 5, NO_FILTER)) == ["m0"]
    assert index.upsert([]) == 0


def test_upserts_after_optimize_stay_unique(tmp_path: Path) -> None:
    vectors = unit_vectors(60)
    index = new_index(tmp_path)
    index.upsert([moment(f"m{i}", f"row {i}", vectors[i]) for i in range(40)])
    index.optimize()  # compacts and builds the moment_id / asset_id / text indexes
    index.upsert([moment(f"m{i}", f"row {i} again", vectors[i]) for i in range(30, 60)])
    index.upsert([moment(f"m{i}", f"row {i} third", vectors[i]) for i in range(0, 60, 7)])
    ids_now = stored_moment_ids(index)
    assert len(ids_now) == len(set(ids_now)) == 60
    assert index.count() == 60
    table = index._open()
    assert table is not None
    assert VECTOR_INDEX not in {idx.name for idx in table.list_indices()}  # small: stays exact


def test_delete_asset_and_delete_stale(tmp_path: Path) -> None:
    vectors = unit_vectors(9)
    index = new_index(tmp_path)
    index.upsert([moment(f"a{i}", f"alpha {i}", vectors[i], asset_id="asset-a") for i in range(5)])
    index.upsert([moment(f"b{i}", f"beta {i}", vectors[5 + i], asset_id="asset-b") for i in range(4)])
    assert (index.count("asset-a"), index.count("asset-b")) == (5, 4)

    assert index.delete_stale("asset-a", {"a0", "a2", "not-there"}) == 3
    assert sorted(ids(index.keyword("alpha", 10, NO_FILTER))) == ["a0", "a2"]
    assert index.count("asset-b") == 4  # the other asset is untouched
    assert index.delete_stale("asset-a", {"a0", "a2"}) == 0

    assert index.delete_asset("asset-b") == 4
    assert index.delete_asset("asset-b") == 0
    assert index.count() == 2
    assert index.delete_stale("asset-a", set()) == 2  # nothing kept: the whole asset goes
    assert index.count() == 0


def test_no_op_writes_add_no_versions(tmp_path: Path) -> None:
    index = new_index(tmp_path)
    index.upsert([moment("m0", "text", unit_vectors(1)[0])])
    table = index._open()
    assert table is not None
    version = table.version
    index.upsert([])
    index.delete_asset("other")
    index.delete_stale("asset-1", {"m0"})
    assert table.version == version


def test_keyword_finds_rows_written_after_the_fts_index_was_built(tmp_path: Path) -> None:
    vectors = unit_vectors(30)
    index = new_index(tmp_path)
    index.upsert([moment(f"m{i}", f"quarterly report section {i}", vectors[i]) for i in range(20)])
    index.optimize()
    assert unindexed_fts_rows(index) == 0
    index.upsert([moment("late", "the xylophone recital was postponed", vectors[20])])
    index.upsert([moment("m3", "quarterly xylophone budget", vectors[3])])  # replaces an indexed row
    # The rows are really outside the inverted index, so this exercises the unindexed path.
    assert unindexed_fts_rows(index) == 2
    assert sorted(ids(index.keyword("xylophone", 10, NO_FILTER))) == ["late", "m3"]
    assert "m3" not in ids(index.keyword("section", 30, NO_FILTER))  # its old text is gone
    assert len(index.keyword("section", 30, NO_FILTER)) == 19

    index.optimize()
    assert unindexed_fts_rows(index) == 0
    assert sorted(ids(index.keyword("xylophone", 10, NO_FILTER))) == ["late", "m3"]


def test_keyword_is_bm25_ranked_stemmed_and_case_insensitive(tmp_path: Path) -> None:
    vectors = unit_vectors(4)
    index = new_index(tmp_path)
    index.upsert(
        [
            moment("many", "Vacation vacation vacations policy", vectors[0]),
            moment("one", "the vacation policy and holiday calendar for all employees", vectors[1]),
            moment("none", "expense reports", vectors[2]),
            moment("quote", 'she said "AND" (twice)', vectors[3]),
        ]
    )
    hits = index.keyword("VACATION", 10, NO_FILTER)
    assert ids(hits) == ["many", "one"]
    assert hits[0].score > hits[1].score > 0.0
    # Query text is never parsed as query syntax.
    assert index.keyword('"and" (twice', 10, NO_FILTER) == index.keyword("twice", 10, NO_FILTER)
    assert ids(index.keyword("twice", 10, NO_FILTER)) == ["quote"]
    assert index.keyword("   ", 10, NO_FILTER) == []


def test_semantic_matches_numpy_brute_force(tmp_path: Path) -> None:
    vectors = unit_vectors(500, seed=3)
    index = new_index(tmp_path)
    index.upsert([moment(f"m{i:03d}", f"row {i}", vectors[i]) for i in range(500)])
    queries = unit_vectors(10, seed=4)
    for query in queries:
        similarities = vectors @ query
        expected = np.argsort(-similarities)[:10]
        hits = index.semantic(query.tolist(), 10, NO_FILTER)
        assert ids(hits) == [f"m{i:03d}" for i in expected]
        assert [hit.score for hit in hits] == pytest.approx(similarities[expected].tolist(), abs=1e-5)
    # Unnormalised input is normalised: cosine does not depend on length.
    scaled = index.semantic((queries[0] * 7.5).tolist(), 3, NO_FILTER)
    assert ids(scaled) == ids(index.semantic(queries[0].tolist(), 3, NO_FILTER))


def test_filters_apply_to_keyword_and_semantic(tmp_path: Path) -> None:
    vectors = unit_vectors(6)
    index = new_index(tmp_path)
    video, audio, speech = MediaType.VIDEO, MediaType.AUDIO, Modality.SPEECH
    index.upsert(
        [
            moment("doc", "budget talk", vectors[0], asset_id="a-doc"),
            moment("vid-speech", "budget talk", vectors[1], asset_id="a-vid", media_type=video, modality=speech),
            moment(
                "vid-screen",
                "budget talk",
                vectors[2],
                asset_id="a-vid",
                media_type=video,
                modality=Modality.SCREEN_TEXT,
            ),
            moment("aud", "budget talk", vectors[3], asset_id="o'brien", media_type=audio, modality=speech),
        ]
    )
    query = vectors[0].tolist()
    cases = [
        (SearchFilters(media_types=[video]), {"vid-speech", "vid-screen"}),
        (SearchFilters(modalities=[speech]), {"vid-speech", "aud"}),
        (SearchFilters(asset_ids=["o'brien"]), {"aud"}),
        (SearchFilters(media_types=[video, audio], modalities=[speech]), {"vid-speech", "aud"}),
        (SearchFilters(asset_ids=["a-doc", "a-vid"], modalities=[Modality.SCREEN_TEXT]), {"vid-screen"}),
        (SearchFilters(asset_ids=["x' OR '1'='1"]), set()),
        (SearchFilters(media_types=[], asset_ids=[]), {"doc", "vid-speech", "vid-screen", "aud"}),
    ]
    for filters, expected in cases:
        assert set(ids(index.keyword("budget", 10, filters))) == expected, filters
        assert set(ids(index.semantic(query, 10, filters))) == expected, filters


def test_filters_to_sql_quotes_values() -> None:
    sql = filters_to_sql(SearchFilters(asset_ids=["it's"], media_types=[MediaType.VIDEO]))
    assert sql == "media_type IN ('video') AND asset_id IN ('it''s')"
    assert filters_to_sql(SearchFilters()) is None


def test_moments_without_vectors_are_keyword_only(tmp_path: Path) -> None:
    vectors = unit_vectors(2)
    index = new_index(tmp_path)
    index.upsert([moment("with", "caption text", vectors[0]), moment("without", "caption text", None)])
    assert sorted(ids(index.keyword("caption", 5, NO_FILTER))) == ["with", "without"]
    assert ids(index.semantic(vectors[1].tolist(), 5, NO_FILTER)) == ["with"]


def test_bad_vectors_are_rejected_before_writing(tmp_path: Path) -> None:
    index = new_index(tmp_path)
    good = moment("good", "fine", unit_vectors(1)[0])
    short = moment("short", "too short", unit_vectors(1, dims=DIMS - 1)[0])
    zero = moment("zero", "all zeros", np.zeros(DIMS, dtype=np.float32))
    for bad in (short, zero):
        with pytest.raises(ValueError):
            index.upsert([good, bad])
    assert index.count() == 0
    with pytest.raises(ValueError):
        index.semantic([1.0, 0.0], 3, NO_FILTER)


def test_reopening_with_other_dimensions_is_a_configuration_error(tmp_path: Path) -> None:
    new_index(tmp_path).upsert([moment("m0", "text", unit_vectors(1)[0])])
    other = LanceMomentIndex(tmp_path, dimensions=DIMS * 2)
    with pytest.raises(ConfigurationError):
        other.count()


def test_a_table_from_an_older_release_gains_the_new_columns_and_keeps_its_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    added = {field.name for field in added_fields(DIMS)}
    with monkeypatch.context() as before_them:  # the release before the columns were added
        before_them.setattr(lance, "added_fields", lambda *_dimensions: ())
        # ... whose full-text index was on "text" itself.
        before_them.setattr(lance, "FTS_INDEX", lance.OLD_FTS_INDEX)
        before_them.setattr(lance, "FTS_COLUMN", "text")
        before_them.setattr(lance, "OLD_FTS_INDEX", "none-before-it")
        old = new_index(tmp_path)
        old.upsert([moment("m0", "the old contract terms", unit_vectors(1)[0])])
        table = old._open()
        assert table is not None and not added & set(table.schema.names)

    index = new_index(tmp_path)  # this release opens it
    # Searchable by keyword at once, before any write: the index moved to keyword_text.
    assert ids(index.keyword("contract", 5, NO_FILTER)) == ["m0"]
    table = index._open()
    assert table is not None and {i.name for i in table.list_indices()} >= {lance.FTS_INDEX}
    assert lance.OLD_FTS_INDEX not in {i.name for i in table.list_indices()}
    narrated = moment("m1", "the narrated contract", unit_vectors(2)[1]).model_copy(
        update={
            "narration_uri": "s3://artifacts/derived/a/narration.mp3",
            "narration_start": 12.5,
            "narration_end": 19.0,
        }
    )
    index.upsert([narrated])
    hits = {hit.moment_id: hit for hit in index.keyword("contract", 5, NO_FILTER)}
    assert set(hits) == {"m0", "m1"}
    assert hits["m0"].narration_start is None and hits["m0"].text == "the old contract terms"
    assert (hits["m1"].narration_start, hits["m1"].narration_end) == (12.5, 19.0)
    assert hits["m1"].narration_uri == "s3://artifacts/derived/a/narration.mp3"


def test_writes_trigger_upkeep_that_bounds_fragments_and_versions(tmp_path: Path) -> None:
    vectors = unit_vectors(12)
    index = new_index(tmp_path, maintain_after_small_fragments=5, version_retention=timedelta(milliseconds=1))
    for i in range(12):
        index.upsert([moment(f"m{i}", f"entry number {i}", vectors[i])])
        time.sleep(0.002)  # let earlier versions age past the retention
    table = index._open()
    assert table is not None
    assert len(table.list_versions()) < 12
    assert small_fragment_count(table) < 5
    assert index.count() == 12
    assert len(index.keyword("entry", 20, NO_FILTER)) == 12


# -- several processes on one directory --------------------------------------------------

PROCESS_IDS = 40  # both writers insert every one of these, one new id per round, in lockstep


def _writer(path: str, tag: str, start: Any, in_step: Any, errors: Any) -> None:
    try:
        vectors = unit_vectors(PROCESS_IDS, seed=11)
        index = LanceMomentIndex(Path(path), dimensions=DIMS, maintain_after_small_fragments=6)
        start.wait(timeout=60)
        for round_ in range(PROCESS_IDS):
            batch = [moment(f"m{round_:02d}", f"shared moment {round_} from {tag}", vectors[round_])]
            if round_:
                batch.append(moment("m00", f"shared moment 0 rewritten by {tag} in round {round_}", vectors[0]))
            # Both writers insert the same new ids at the same moment: without conflict detection
            # on the key, both inserts would commit and the rows would be duplicated.
            in_step.wait(timeout=60)
            index.upsert(batch)
    except BaseException:
        errors.put(f"{tag}: {traceback.format_exc()}")


def _reader(path: str, start: Any, errors: Any, counts: Any) -> None:
    try:
        index = LanceMomentIndex(Path(path), dimensions=DIMS, maintain_after_small_fragments=None)
        query = unit_vectors(1, seed=99)[0].tolist()
        start.wait(timeout=60)
        deadline = time.monotonic() + 60
        seen: list[int] = []
        while time.monotonic() < deadline:
            seen.append(index.count())
            index.keyword("shared", 10, NO_FILTER)
            index.semantic(query, 5, NO_FILTER)
            if seen[-1] == PROCESS_IDS and len(seen) > 5:
                break
        counts.put(seen)
    except BaseException:
        errors.put(f"reader: {traceback.format_exc()}")


@pytest.mark.slow
def test_two_writers_and_a_reader_share_a_brand_new_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "fresh"  # does not exist: all three processes race to create it
    # Spawned children unpickle the targets by importing this module by its package path.
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    context = multiprocessing.get_context("spawn")  # forking a process with Lance's threads is unsafe
    start = context.Barrier(3)  # released once all three have imported and opened the index
    in_step = context.Barrier(2)
    errors = context.Queue()
    counts = context.Queue()
    processes = [
        context.Process(target=_writer, args=(str(path), "w1", start, in_step, errors)),
        context.Process(target=_writer, args=(str(path), "w2", start, in_step, errors)),
        context.Process(target=_reader, args=(str(path), start, errors, counts)),
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert all(process.exitcode == 0 for process in processes)
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert failures == []
    seen = counts.get(timeout=5)
    assert seen, "the reader never ran"
    assert seen == sorted(seen), "a reader saw rows disappear"
    assert max(seen) <= PROCESS_IDS

    index = new_index(path)
    ids_now = stored_moment_ids(index)
    assert len(ids_now) == len(set(ids_now)) == PROCESS_IDS
    assert len(index.keyword("shared", 50, NO_FILTER)) == PROCESS_IDS


# -- approximate nearest neighbours ------------------------------------------------------

ANN_ROWS = 20_000
ANN_DIMS = 384


def recall_at_10(index: LanceMomentIndex, vectors: npt.NDArray[np.float32], queries: npt.NDArray[np.float32]) -> float:
    found = 0
    for query in queries:
        expected = {f"m{i:05d}" for i in np.argsort(-(vectors @ query))[:10]}
        found += len(expected & set(ids(index.semantic(query.tolist(), 10, NO_FILTER))))
    return found / (10 * len(queries))


@pytest.mark.slow
def test_ann_recall_at_10_against_numpy(tmp_path: Path) -> None:
    # Uniform random 384-d vectors are the hard case for a graph index: every point is nearly
    # equidistant from a query. Real sentence embeddings cluster and give higher recall.
    vectors = unit_vectors(ANN_ROWS, dims=ANN_DIMS, seed=7)
    queries = unit_vectors(50, dims=ANN_DIMS, seed=8)
    index = LanceMomentIndex(tmp_path, dimensions=ANN_DIMS, ann_threshold=10_000, maintain_after_small_fragments=None)
    index.upsert([moment(f"m{i:05d}", f"row {i}", vectors[i]) for i in range(ANN_ROWS)])
    index.optimize()
    table = index._open()
    assert table is not None
    assert VECTOR_INDEX in {idx.name for idx in table.list_indices()}

    assert recall_at_10(index, vectors, queries) >= 0.95

    # The same directory searched with a starved graph search loses recall, which shows the
    # queries above went through the index rather than an exact scan.
    starved = LanceMomentIndex(tmp_path, dimensions=ANN_DIMS, ann_threshold=10_000, ef=10, refine_factor=1)
    assert recall_at_10(starved, vectors, queries) < 0.9


def test_chinese_and_japanese_are_found_by_keyword_without_spaces(tmp_path: Path) -> None:
    index = new_index(tmp_path)
    vectors = unit_vectors(3)
    index.upsert(
        [
            moment("zh", "广州市房地产中介协会分析", vectors[0]),
            moment("ja", "ポイ捨て禁止! 清潔できれいな港区を", vectors[1]),
            moment("en", "Guangzhou property prices", vectors[2]),
        ]
    )
    assert ids(index.keyword("广州房地产", 5, NO_FILTER)) == ["zh"]
    assert ids(index.keyword("港区", 5, NO_FILTER)) == ["ja"]
    assert ids(index.keyword("ポイ捨て", 5, NO_FILTER)) == ["ja"]
    assert ids(index.keyword("Guangzhou", 5, NO_FILTER)) == ["en"]
    assert ids(index.keyword("廣州房地產", 5, NO_FILTER)) == ["zh"]  # traditional question, simplified text
    # What is shown stays the text as written.
    assert [hit.text for hit in index.keyword("协会", 5, NO_FILTER)] == ["广州市房地产中介协会分析"]
