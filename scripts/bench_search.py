"""Benchmarks search on the embedded LanceDB index: p50/p95 latency of keyword, semantic and
hybrid queries at 10k and 100k moments, through the API resolver and directly, and recall@10 of
the index's vector search against exact (numpy) search.

    .venv/bin/python scripts/bench_search.py --sizes 10000 100000 --json .bench/search.json

Embedding 100k real texts takes too long on a small machine, so moments are built like this:

* a base set of real sentences (``--base``), each embedded by the real int8 MiniLM;
* every further moment is a two-sentence passage: two base sentences joined, whose vector is
  the normalised sum of their two real embeddings, plus Gaussian noise (sigma ``--noise`` per
  dimension) so that no two derived vectors coincide. The texts are real words, so BM25 works on
  a real vocabulary; the vectors are mixtures of real embeddings, not model output for the joined
  text (a mean-pooled encoder gives something close, not equal). The output says so, with the
  mean cosine between a derived vector and its noise-free mixture.

Queries are fresh sentences (not in the index) embedded by the same model at query time, as the
API does (its question-vector cache off; "hybrid_asked_again" asks every question a second time
with the cache on); "direct" calls ``SearchService`` in-process, "api" sends an API Gateway event through
the Powertools resolver (validation, snippets, links included). Recall@10 compares the index's
``semantic()`` (ANN once the table passes the index's ``ann_threshold``, exact below it) with
brute-force cosine over every vector.

``--cold N`` measures something else: what a user waits for when they type ``medialens search``.
Each search runs as a fresh process (interpreter start, imports, model loads, index open, query,
output) against an existing home (``MEDIALENS_HOME``, or ``--home``), N times per mode, the modes
interleaved so that other load on the machine spreads over all of them; the file system cache
is warm (one unmeasured run per mode first). It prints p50 and max wall time per mode, with the
CPU seconds the process used (more than its wall time where work overlapped on several cores),
the time to import the CLI alone, a breakdown of one cold hybrid search done step by step
(what each part costs), and then the same searches once a first search has started a search
server in the background as it does for a user (``search_server_idle_s``), with how long after
that first search the server answered::

    .venv/bin/python scripts/bench_search.py --cold 10 --home .medialens
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import numpy.typing as npt

from medialens.adapters.index.lance import LanceMomentIndex
from medialens.api.app import app
from medialens.cli.main import IN_PROCESS
from medialens.domain.assets import MediaType
from medialens.domain.moments import Modality, Moment
from medialens.domain.search import SearchFilters, SearchMode, SearchQuery
from medialens.local.announce import announcement_path, running_server
from medialens.services import Services, set_services
from medialens.settings import Settings, get_settings


def choices(text: str) -> list[str]:
    """Phrases separated by "|" (line breaks inside the literal are only layout)."""
    return [" ".join(part.split()) for part in text.split("|")]


SUBJECTS = choices("""the finance team|our support desk|the new retention policy|the ingest pipeline
|each regional office|the keynote speaker|a customer in Lisbon|the video transcoder
|every full-time employee|the security auditor
|the mobile app|the warehouse in Rotterdam|the night shift|the board of directors|the data platform
|the onboarding guide|the release manager|a field engineer|the legal department|the marketing campaign
|the payment service|the storage cluster|the search index|the hiring committee|the travel desk
|the quarterly report|the incident commander|the design review|the customer survey|the product owner""")
VERBS = choices("""describes|requires|reduced|will replace|mentions|explains|approved|measured|postponed|doubled
|rejected|summarised|introduced|audited|scheduled|cancelled|reviewed|estimated|migrated|announced""")
OBJECTS = choices("""the cost of storing raw footage for seven years|twenty-five days of paid annual leave
|a latency budget of two hundred milliseconds|the migration to event-driven processing
|how search results are ranked by relevance|the holiday rota for the on-call engineers
|a fourteen percent increase in subscription revenue|the safety briefing before the site visit
|the password rotation for the production database|the escalation path when a page is ignored
|the warranty on refurbished robots|refunds for orders returned within forty-five days
|the expense deadline of thirty days|the new laptop refresh cycle|the backup schedule of six hours
|the carbon footprint of the data centre|the roadmap for the autumn launch|the firmware certification delay
|the parental leave of sixteen weeks|the meal allowance for business travel|the shipping cut-off at two o'clock
|the accessibility audit of the website|the encryption of customer records|the quarterly budget forecast
|the intern programme in Berlin|the outage of the payment gateway|the noise complaint from the neighbours
|the vendor contract for cloud storage|the translation of the user manual|the price of the premium plan""")
CLAUSES = choices("""according to the minutes of Tuesday's meeting|although the budget was cut in March
|which the board discussed at length|as shown on slide twelve of the deck|because the previous vendor ended support
|so that every asset can be searched|after the audit in February|before the end of the fiscal year
|despite objections from the works council|while the team was travelling|once the pilot in Porto succeeded
|unless the regulator objects|in line with the new policy|during the all-hands call""")


def make_sentences(count: int, rng: random.Random) -> list[str]:
    subjects, verbs, objects, clauses = SUBJECTS, VERBS, OBJECTS, CLAUSES
    sentences: set[str] = set()
    while len(sentences) < count:
        sentence = f"{rng.choice(subjects).capitalize()} {rng.choice(verbs)} {rng.choice(objects)}"
        if rng.random() < 0.6:
            sentence += f", {rng.choice(clauses)}"
        sentences.add(sentence + ".")
    return sorted(sentences)


def make_queries(count: int, rng: random.Random, exclude: set[str]) -> list[str]:
    """Questions and phrases in the corpus's vocabulary, none of them a stored sentence."""
    objects, subjects = OBJECTS, SUBJECTS
    forms = [
        lambda: f"what did {rng.choice(subjects)} say about {rng.choice(objects)}",
        lambda: f"{rng.choice(objects)}",
        lambda: f"when was {rng.choice(objects)} {rng.choice(VERBS)}",
        lambda: f"who is responsible for {rng.choice(objects)}",
    ]
    queries: list[str] = []
    while len(queries) < count:
        query = rng.choice(forms)()
        if query not in exclude and query not in queries:
            queries.append(query)
    return queries


def unit_rows(matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    normalised: npt.NDArray[np.float32] = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    return normalised


def build_corpus(
    total: int, base_texts: list[str], base_vectors: npt.NDArray[np.float32], noise: float, seed: int
) -> tuple[list[str], npt.NDArray[np.float32], float]:
    """The first ``len(base_texts)`` moments are real; the rest are joined pairs (see the docstring).
    Returns texts, unit vectors, and the mean cosine of derived vectors to their mixtures."""
    rng = np.random.default_rng(seed)
    count = min(total, len(base_texts))
    texts = list(base_texts[:count])
    vectors = [base_vectors[:count]]
    derived = total - count
    similarity = 1.0
    if derived > 0:
        pairs = rng.integers(0, len(base_texts), size=(derived, 2))
        pairs[:, 1] = np.where(pairs[:, 0] == pairs[:, 1], (pairs[:, 1] + 1) % len(base_texts), pairs[:, 1])
        mixtures = unit_rows(base_vectors[pairs[:, 0]] + base_vectors[pairs[:, 1]])
        noisy = unit_rows(mixtures + rng.normal(0.0, noise, mixtures.shape).astype(np.float32))
        similarity = float(np.mean(np.sum(mixtures * noisy, axis=1)))
        texts += [f"{base_texts[a]} {base_texts[b]}" for a, b in pairs]
        vectors.append(noisy)
    return texts, np.vstack(vectors).astype(np.float32), similarity


def moments_for(texts: list[str], vectors: npt.NDArray[np.float32], start: int) -> list[Moment]:
    """Moments spread over assets, media types and modalities like a mixed library."""
    kinds = [
        (MediaType.DOCUMENT, Modality.DOCUMENT),
        (MediaType.VIDEO, Modality.SPEECH),
        (MediaType.VIDEO, Modality.SCREEN_TEXT),
        (MediaType.AUDIO, Modality.SPEECH),
    ]
    moments = []
    for offset, (text, vector) in enumerate(zip(texts, vectors, strict=True)):
        number = start + offset
        media_type, modality = kinds[number % len(kinds)]
        asset = f"bench-asset-{number // 50:05d}"
        timed = media_type is not MediaType.DOCUMENT
        moments.append(
            Moment(
                moment_id=f"m{number:07d}",
                asset_id=asset,
                source=f"s3://medialens-drop/incoming/bench/{asset}.{'pdf' if not timed else 'mp4'}",
                media_type=media_type,
                modality=modality,
                text=text,
                page=None if timed else 1 + (number % 50) // 5,
                start=float(number % 50) * 6.0 if timed else None,
                end=float(number % 50) * 6.0 + 6.0 if timed else None,
                vector=vector.tolist(),
                model_versions={"text_embedding": "bench"},
                pipeline_version="1",
            )
        )
    return moments


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered), 2), "p95_ms": round(p95, 2), "n": len(ordered)}


def timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return (time.perf_counter() - started) * 1000.0


def api_event(query: str, mode: str, k: int) -> dict[str, Any]:
    path = "/search"
    params = {"query": query, "mode": mode, "k": str(k)}
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": "GET",
        "headers": {"Accept": "application/json"},
        "multiValueHeaders": {"Accept": ["application/json"]},
        "queryStringParameters": params,
        "multiValueQueryStringParameters": {name: [value] for name, value in params.items()},
        "pathParameters": {"proxy": "search"},
        "requestContext": {"requestId": "bench", "stage": "bench", "path": "/bench" + path + "?" + quote(query)},
        "body": None,
        "isBase64Encoded": False,
    }


def bench_size(
    size: int,
    texts: list[str],
    vectors: npt.NDArray[np.float32],
    queries: list[str],
    query_vectors: npt.NDArray[np.float32],
    settings: Settings,
    k: int,
) -> dict[str, Any]:
    home = settings.home
    shutil.rmtree(home, ignore_errors=True)
    index = LanceMomentIndex(settings.index_dir, dimensions=vectors.shape[1], maintain_after_small_fragments=None)
    started = time.perf_counter()
    batch = 10_000
    for start in range(0, size, batch):
        end = min(start + batch, size)
        index.upsert(moments_for(texts[start:end], vectors[start:end], start))
    ingest_s = time.perf_counter() - started
    started = time.perf_counter()
    index.optimize()  # refreshes BM25 statistics, builds scalar indexes, and the ANN index when large
    optimize_s = time.perf_counter() - started
    ann = size >= index.ann_threshold

    # The API's own wiring over the same directory, with no question cache: every query below is
    # new to the encoder, as a stream of distinct searches would be.
    services = Services(settings.model_copy(update={"search_query_cache_size": 0}))
    set_services(services)
    service = services.search
    for query in queries[:5]:  # warm-up: model session, table handles, caches
        for mode in SearchMode:
            service.search(SearchQuery(text=query, mode=mode, k=k))
            app.resolve(api_event(query, mode.value, k), None)

    latency: dict[str, dict[str, Any]] = {}
    for mode in SearchMode:
        direct = [timed(lambda q=q, m=mode: service.search(SearchQuery(text=q, mode=m, k=k))) for q in queries]

        def through_api(q: str, mode: SearchMode = mode) -> None:
            response = app.resolve(api_event(q, mode.value, k), None)
            assert response["statusCode"] == 200, response["body"]

        api = [timed(lambda q=q: through_api(q)) for q in queries]
        latency[mode.value] = {"direct": percentiles(direct), "api": percentiles(api)}
    index_only = [timed(lambda v=v: services.index.semantic(v, k, SearchFilters())) for v in query_vectors]
    latency["knn_index_only"] = {"direct": percentiles(index_only)}
    # The same questions asked again, through a service that keeps question vectors (the default).
    cached = Services(settings).search
    for query in queries:
        cached.search(SearchQuery(text=query, mode=SearchMode.HYBRID, k=k))
    again = [timed(lambda q=q: cached.search(SearchQuery(text=q, mode=SearchMode.HYBRID, k=k))) for q in queries]
    latency["hybrid_asked_again"] = {"direct": percentiles(again)}

    # Recall@k of the index's vector search against brute force over all vectors.
    exact = np.argsort(-(query_vectors @ vectors[:size].T), axis=1)[:, :k]
    recalls = []
    for row, vector in enumerate(query_vectors):
        found = {hit.moment_id for hit in services.index.semantic(vector, k, SearchFilters())}
        truth = {f"m{int(i):07d}" for i in exact[row]}
        recalls.append(len(found & truth) / k)
    set_services(None)
    return {
        "moments": size,
        "vector_search": "ANN (IVF_HNSW_SQ, refine)" if ann else "exact scan (below ann_threshold)",
        "ingest_s": round(ingest_s, 2),
        "optimize_s": round(optimize_s, 2),
        "latency": latency,
        f"recall_at_{k}": round(float(np.mean(recalls)), 4),
        f"recall_at_{k}_min": round(float(np.min(recalls)), 2),
    }


# --- cold searches: one process per question -------------------------------------------------

COLD_QUERIES = (
    "How much paid leave do staff get each year?",
    "password rotation for the production database",
    "hur många semesterdagar får man",  # not English: the multilingual encoder alone answers it
)

# A cold hybrid search step by step, in the order the CLI meets them: what each part costs. Run
# in a fresh interpreter; prints JSON.
PHASES_SCRIPT = """
import json, sys, time
started = time.perf_counter()
phases = {}
def mark(name):
    global started
    now = time.perf_counter()
    phases[name] = round((now - started) * 1000.0, 1)
    started = now
import medialens.cli.main
mark("import_cli")
from medialens.domain.search import SearchMode, SearchQuery
from medialens.local.wiring import local_services
from medialens.ml.language import guess_language
from medialens.settings import get_settings
services = local_services(get_settings())
embedder, english = services.embedder, services.english_embedder
mark("settings_and_wiring")
import lancedb
mark("import_lancedb")
services.index.count()
mark("open_index")
question = sys.argv[1]
guess_language(question)
mark("load_language_model")
for model in (embedder, english):
    if model is not None:
        model.store.resolve(model.name, model.quantization)  # the sha256 check (once per process)
        mark("verify_" + model.name)
        model.load()
        mark("load_" + model.name)
if services.image_embedder is not None:
    services.image_embedder.load()
    mark("load_" + services.image_embedder.name)
services.search.search(SearchQuery(text=question, mode=SearchMode.HYBRID, k=10))
mark("hybrid_query")
print(json.dumps(phases))
"""


def cli_command() -> list[str]:
    """The installed ``medialens`` script next to this interpreter, else ``python -m``."""
    script = Path(sys.executable).with_name("medialens")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "medialens.cli.main"]


def run_cold(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Runs one process to completion; returns its wall seconds, its CPU seconds and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=600)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} exited {done.returncode}: {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def wall_figures(samples: list[tuple[float, float]]) -> dict[str, float]:
    walls = sorted(wall for wall, _ in samples)
    return {
        "p50_s": round(statistics.median(walls), 3),
        "max_s": round(walls[-1], 3),
        "min_s": round(walls[0], 3),
        "cpu_p50_s": round(statistics.median(cpu for _, cpu in samples), 3),
        "n": len(walls),
    }


def bench_cold(runs: int, home: Path | None, queries: list[str]) -> dict[str, Any]:
    # Cold means cold: these searches start no background search server (the last part does).
    env = dict(os.environ) | {"MEDIALENS_SEARCH_SERVER_IDLE_S": "0"}
    if home is not None:
        env["MEDIALENS_HOME"] = str(home)
    get_settings.cache_clear()
    settings = Settings(home=home) if home is not None else get_settings()
    if not settings.registry_path.exists():
        raise SystemExit(f"no medialens home at {settings.home}: ingest something first (or pass --home)")
    command = cli_command()
    searches = {mode: [[*command, "search", q, "--mode", mode.value, "--json"] for q in queries] for mode in SearchMode}
    load_start = os.getloadavg()[0]
    hits: dict[str, int] = {}
    for mode, commands in searches.items():  # warm the file system cache; checks each command works
        for line in commands:
            hits[f"{mode.value}: {line[-5]}"] = len(json.loads(run_cold(line, env)[2])["hits"])
    samples: dict[str, list[tuple[float, float]]] = {mode.value: [] for mode in SearchMode}
    imports: list[tuple[float, float]] = []
    bare: list[tuple[float, float]] = []
    for round_number in range(runs):
        for mode, commands in searches.items():
            samples[mode.value].append(run_cold(commands[round_number % len(commands)], env)[:2])
        imports.append(run_cold([sys.executable, "-c", "import medialens.cli.main"], env)[:2])
        bare.append(run_cold([sys.executable, "-c", "pass"], env)[:2])
    phases = json.loads(run_cold([sys.executable, "-c", PHASES_SCRIPT, queries[0]], env)[2])
    via_serve = bench_cold_via_started_server(runs, searches, env, settings.home)
    return {
        "command": shlex.join([*command, "search", "QUESTION", "--mode", "MODE", "--json"]),
        "home": str(settings.home),
        "moments": Services(settings).index.count(),
        "queries": queries,
        "hits": hits,
        "modes": {mode: wall_figures(runs_of_mode) for mode, runs_of_mode in samples.items()},
        "import_cli": wall_figures(imports),
        "python_start": wall_figures(bare),
        "phases_ms_one_at_a_time": phases,
        "modes_via_serve": via_serve,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_start": round(load_start, 2),
            "load_end": round(os.getloadavg()[0], 2),
        },
    }


def bench_cold_via_started_server(
    runs: int, searches: dict[SearchMode, list[list[str]]], env: dict[str, str], home: Path
) -> dict[str, Any]:
    """The same cold ``medialens search`` processes once a search has started a search server
    (``search_server_idle_s``) as it does for a user: how long after that first search the
    server answers, and then what each search takes. Each answer must say the server gave it."""
    if running_server(home) is not None:
        raise SystemExit(f"a medialens server already runs for {home}: stop it first")
    began = time.perf_counter()
    first = run_cold(searches[SearchMode.HYBRID][0], env | {"MEDIALENS_SEARCH_SERVER_IDLE_S": "600"})
    if json.loads(first[2])["answered_by"] != IN_PROCESS:
        raise RuntimeError("the first search was not answered by its own process")
    try:
        deadline = time.monotonic() + 120
        while running_server(home) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no search server started: see {home / 'logs' / 'search-server.out'}")
            time.sleep(0.1)
        ready_s = time.perf_counter() - began
        url = running_server(home)
        samples: dict[str, list[tuple[float, float]]] = {mode.value: [] for mode in searches}
        for commands in searches.values():  # the file system cache; each answer from the server
            for line in commands:
                if json.loads(run_cold(line, env)[2])["answered_by"] != url:
                    raise RuntimeError(f"{shlex.join(line)} was not answered by the server")
        for round_number in range(runs):
            for mode, commands in searches.items():
                samples[mode.value].append(run_cold(commands[round_number % len(commands)], env)[:2])
    finally:
        _stop_server(home)
    return {"ready_after_first_search_s": round(ready_s, 2)} | {
        mode: wall_figures(runs_of_mode) for mode, runs_of_mode in samples.items()
    }


def _stop_server(home: Path) -> None:
    """Stops the server announced for ``home`` (SIGTERM: it withdraws its announcement)."""
    try:
        os.kill(int(json.loads(announcement_path(home).read_text(encoding="utf-8"))["pid"]), signal.SIGTERM)
    except (OSError, ValueError, KeyError):
        return
    deadline = time.monotonic() + 60
    while running_server(home) is not None and time.monotonic() < deadline:
        time.sleep(0.1)


def print_cold(results: dict[str, Any]) -> None:
    machine = results["machine"]
    print(f"command: {results['command']}")
    print(
        f"home: {results['home']} ({results['moments']} moments); machine: {machine['cpus']} CPUs, "
        f"python {machine['python']}, load {machine['load_start']} -> {machine['load_end']}"
    )
    print(f"{'cold process':<32} {'p50 s':>7} {'max s':>7} {'min s':>7} {'CPU p50 s':>10} {'n':>4}")
    rows = [(f"search --mode {mode}", figures) for mode, figures in results["modes"].items()]
    rows += [("import medialens.cli", results["import_cli"]), ("python -c pass", results["python_start"])]
    via_server = dict(results["modes_via_serve"])
    ready_s = via_server.pop("ready_after_first_search_s")
    rows += [(f"  via server: --mode {mode}", figures) for mode, figures in via_server.items()]
    for label, figures in rows:
        print(
            f"{label:<32} {figures['p50_s']:>7.3f} {figures['max_s']:>7.3f} {figures['min_s']:>7.3f} "
            f"{figures['cpu_p50_s']:>10.3f} {figures['n']:>4}"
        )
    print(f"the search server a first search started answered {ready_s:.1f} s after that search began")
    phases = results["phases_ms_one_at_a_time"]
    print("one cold hybrid search, step by step (ms): " + ", ".join(f"{k} {v:.0f}" for k, v in phases.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--base", type=int, default=4000, help="real sentences embedded by the model")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--noise", type=float, default=0.02, help="sigma per dimension for derived vectors")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=None, help="index location (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--cold", type=int, default=0, metavar="N", help="instead: N fresh `medialens search` processes per mode"
    )
    parser.add_argument("--home", type=Path, default=None, help="--cold: the home to search (default: MEDIALENS_HOME)")
    parser.add_argument(
        "--question", action="append", default=None, help="--cold: a question to ask (repeatable; default: three)"
    )
    args = parser.parse_args(argv)
    if args.cold:
        cold = bench_cold(args.cold, args.home, args.question or list(COLD_QUERIES))
        print_cold(cold)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(cold, indent=2) + "\n", encoding="utf-8")
        return 0
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"  # no EMF lines in the benchmark's output

    get_settings.cache_clear()
    environment = get_settings()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="medialens-bench-"))
    settings = environment.model_copy(update={"home": workdir / "home", "model_cache": environment.models_dir})
    services = Services(settings)
    embedder = services.embedder
    embedder.load()

    rng = random.Random(args.seed)
    base_texts = make_sentences(args.base, rng)
    queries = make_queries(args.queries, rng, set(base_texts))
    started = time.perf_counter()
    base_vectors = embedder.embed(base_texts).astype(np.float32)
    embed_s = time.perf_counter() - started
    query_vectors = embedder.embed(queries).astype(np.float32)

    largest = max(args.sizes)
    texts, vectors, derived_cosine = build_corpus(largest, base_texts, base_vectors, args.noise, args.seed)
    results: dict[str, Any] = {
        "command": shlex.join(["python", *sys.argv]),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            # Other work on the machine shows up in latency: the 1-minute load at start and end.
            "load_start": round(os.getloadavg()[0], 2),
        },
        "model": embedder.version,
        "corpus": {
            "real_embedded_sentences": len(base_texts),
            "embedding_s": round(embed_s, 2),
            "derived": "two base sentences joined; vector = normalise(e1 + e2 + N(0, sigma^2))",
            "noise_sigma": args.noise,
            "mean_cosine_derived_to_mixture": round(derived_cosine, 4),
            "queries": len(queries),
        },
        "k": args.k,
        "sizes": [],
    }
    for size in sorted(args.sizes):
        print(f"[bench] {size} moments…", file=sys.stderr, flush=True)
        results["sizes"].append(bench_size(size, texts, vectors, queries, query_vectors, settings, args.k))
    results["machine"]["load_end"] = round(os.getloadavg()[0], 2)
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"command: {results['command']}")
    machine = results["machine"]
    print(
        f"machine: {machine['cpus']} CPUs, {machine['platform']}, load {machine['load_start']} -> "
        f"{machine['load_end']}; model {results['model']}"
    )
    corpus = results["corpus"]
    print(
        f"corpus: {corpus['real_embedded_sentences']} real sentences embedded in {corpus['embedding_s']} s; the rest "
        f"derived ({corpus['derived']}, sigma {corpus['noise_sigma']}, mean cosine to mixture "
        f"{corpus['mean_cosine_derived_to_mixture']}); {corpus['queries']} unseen queries, k={args.k}"
    )
    header = f"{'moments':>8} {'mode':<15} {'direct p50/p95 ms':>19} {'api p50/p95 ms':>16}"
    print(header)
    for entry in results["sizes"]:
        for mode, paths in entry["latency"].items():
            direct = paths["direct"]
            api = paths.get("api")
            api_text = f"{api['p50_ms']:>7.1f}/{api['p95_ms']:<7.1f}" if api else f"{'-':>16}"
            print(f"{entry['moments']:>8} {mode:<15} {direct['p50_ms']:>9.1f}/{direct['p95_ms']:<9.1f} {api_text}")
        print(
            f"{entry['moments']:>8} vector search: {entry['vector_search']}; recall@{args.k} "
            f"{entry[f'recall_at_{args.k}']} (worst query {entry[f'recall_at_{args.k}_min']}); "
            f"ingest {entry['ingest_s']} s, optimize {entry['optimize_s']} s"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
