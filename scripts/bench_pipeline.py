"""The whole local pipeline against its ceiling, measured in one process and one run.

``--mixed`` (the speed benchmark): a mixed corpus of about 11 media minutes (scripts/bench_corpus.py:
videos with speech and captions, recordings, images of text, documents), or ``--folder`` any
folder of media, goes first through the ceiling (the same models and analysis called file after
file, scripts/bench_ceiling.py), then through the pipeline; it prints both walls, times real time,
the pipeline's overhead over the ceiling, each stage's share, peak RSS of each phase, the speech
cascade's fallback rate, then the cache: the same bytes uploaded again under other keys (every
analysis reused, no inference) and, for the corpus, recall@5 of questions whose answers are known::

    .venv/bin/python scripts/bench_pipeline.py --mixed --json .bench/pipeline-mixed.json
    .venv/bin/python scripts/bench_pipeline.py --folder path/to/media

Without them: documents per second (``--documents``) and the text embedder's fp32-vs-int8 speed.

The pipeline part is the real thing: files are uploaded to the embedded drop bucket, admitted by
the ingest handler, analysed by the state machine on moto with the Lambda handlers and the heavy
worker, indexed into LanceDB, in a fresh MEDIALENS_HOME.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_embeddings
import mixed_bench
from bench_corpus import write_documents
from medialens.domain.assets import AssetStatus
from medialens.local.runtime import LocalRuntime
from medialens.local.uploads import plan_uploads, upload
from medialens.reporting import summary
from medialens.settings import Settings, get_settings

console = Console()


def run_pipeline(documents: int, seed: int, light_workers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="medialens-bench-") as tmp:
        root = Path(tmp)
        paths = write_documents(root / "docs", documents, seed)
        total_bytes = sum(p.stat().st_size for p in paths)
        base = get_settings()
        settings = Settings(home=root / "home", model_cache=base.models_dir)
        runtime = LocalRuntime(settings, light_workers=light_workers)
        started = time.perf_counter()
        runtime.start()
        ready = time.perf_counter()
        try:
            assert runtime.services is not None
            runtime.services.embedder.load()  # a warm worker: model load is reported apart
            loaded = time.perf_counter()
            plan, _ = plan_uploads([root / "docs"], settings.drop_prefix)
            uploaded = upload(runtime.services, plan)
            assets = runtime.wait_for([u.asset_id for u in uploaded], timeout_s=3600)
            finished = time.perf_counter()
        finally:
            runtime.stop()
    wall = finished - loaded
    succeeded = [a for a in assets if a.status is AssetStatus.SUCCEEDED]
    latencies = sorted(a.elapsed_seconds for a in assets)
    report = summary(assets)
    return {
        "documents": documents,
        "megabytes": round(total_bytes / 1e6, 2),
        "succeeded": len(succeeded),
        "failed": len(assets) - len(succeeded),
        "moments": report["moments"],
        "runtime_start_s": round(ready - started, 2),
        "model_load_s": round(loaded - ready, 2),
        "wall_s": round(wall, 2),
        "documents_per_s": round(len(succeeded) / wall, 2),
        "moments_per_s": round(report["moments"] / wall, 1),
        "asset_latency_p50_s": round(latencies[len(latencies) // 2], 2),
        "asset_latency_max_s": round(latencies[-1], 2),
        "stages": report["stages"],
    }


def print_results(results: dict[str, Any]) -> None:
    pipeline = results["pipeline"]
    console.print(
        f"[bold]pipeline[/]: {pipeline['succeeded']}/{pipeline['documents']} documents "
        f"({pipeline['megabytes']} MB, {pipeline['moments']} moments) in {pipeline['wall_s']} s → "
        f"[bold green]{pipeline['documents_per_s']} documents/s[/], {pipeline['moments_per_s']} moments/s; "
        f"per-asset latency p50 {pipeline['asset_latency_p50_s']} s, max {pipeline['asset_latency_max_s']} s "
        f"(runtime start {pipeline['runtime_start_s']} s and model load {pipeline['model_load_s']} s not counted)"
    )
    table = Table(title="per-stage time (worker-side, per asset; embed_text per batch)")
    for column in ("stage", "runs", "p50 s", "p95 s", "total s"):
        table.add_column(column, justify="right" if column != "stage" else "left")
    for stage, stats in pipeline["stages"].items():
        table.add_row(
            stage, str(stats["count"]), f"{stats['p50_s']:.3f}", f"{stats['p95_s']:.3f}", f"{stats['total_s']:.2f}"
        )
    console.print(table)
    if "embeddings" in results:
        bench_embeddings.print_table(results["embeddings"])  # ends with the command line too
    else:
        console.print(f"[dim]reproduce: {results['command']}[/]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=48, help="documents to push through (default 48)")
    parser.add_argument("--light-workers", type=int, default=2, help="concurrent light-step pollers")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--sentences", type=int, default=256, help="sentences for the embedding benchmark")
    parser.add_argument("--skip-embeddings", action="store_true", help="only the pipeline benchmark")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--mixed", action="store_true", help="ceiling vs pipeline over the mixed corpus")
    parser.add_argument("--folder", type=Path, default=None, help="ceiling vs pipeline over this folder")
    parser.add_argument("--corpus-dir", type=Path, default=Path(".bench/corpus"), help="where --mixed keeps its corpus")
    parser.add_argument("--no-ceiling", action="store_true", help="--mixed/--folder: the pipeline alone")
    parser.add_argument("--no-copies", action="store_true", help="--mixed/--folder: skip the same-bytes re-upload")
    parser.add_argument("--home", type=Path, default=None, help="--mixed/--folder: keep the analysed home here")
    args = parser.parse_args()
    command = shlex.join([".venv/bin/python", "scripts/bench_pipeline.py", *sys.argv[1:]])
    if args.mixed or args.folder is not None:
        results = mixed_bench.run(args, command)
        mixed_bench.print_results(results)
        if args.json is not None:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        return
    results: dict[str, Any] = {
        "command": shlex.join([".venv/bin/python", "scripts/bench_pipeline.py", *sys.argv[1:]]),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "pipeline": run_pipeline(args.documents, args.seed, args.light_workers),
    }
    if not args.skip_embeddings:
        embedding_args = argparse.Namespace(
            sentences=args.sentences,
            threads=0,
            batch_size=32,
            repeats=3,
            seed=7,
            model=get_settings().text_embedding_model,
            cache_dir=get_settings().models_dir,
            rebuild=False,
        )
        results["embeddings"] = bench_embeddings.run(embedding_args)
    print_results(results)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
