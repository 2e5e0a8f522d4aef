"""Ceiling vs pipeline over a mixed corpus or any folder: the body of ``bench_pipeline.py
--mixed`` / ``--folder`` (see that script's docstring)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench_ceiling import DirectAnalysis, load_models
from bench_corpus import Mix, make_corpus
from medialens.domain.assets import Asset, AssetStatus
from medialens.domain.search import SearchMode, SearchQuery
from medialens.insight.cost import summarize_costs
from medialens.local.runtime import LocalRuntime
from medialens.local.uploads import PlannedUpload, plan_uploads, upload
from medialens.media.detection import SNIFF_BYTES, detect_media_type
from medialens.media.probe import probe_media
from medialens.ml.base import reset_models
from medialens.pipeline.catalog import CATALOG, WorkerClass
from medialens.reporting import summary
from medialens.settings import Settings, get_settings
from medialens.worker.memory import cap_malloc_arenas

console = Console()
QUESTIONS = 60  # known answers asked of the index (spread over the corpus)


class PhaseUsage:
    """What a phase used: the highest resident set size of this process (sampled every 0.2 s) and
    CPU seconds, this process's threads and the programs it ran (ffmpeg, espeak-ng) apart. CPU
    over wall x cores says whether a slower phase did more work or left the cores idle."""

    def __init__(self) -> None:
        self.peak_bytes = 0
        self.cpu_s = 0.0
        self.children_cpu_s = 0.0
        self._stop = threading.Event()

    @staticmethod
    def current() -> int:
        pages = Path("/proc/self/statm").read_text(encoding="ascii").split()[1]
        return int(pages) * os.sysconf("SC_PAGE_SIZE")

    @contextmanager
    def watching(self) -> Iterator[PhaseUsage]:
        self._stop.clear()
        self.peak_bytes = self.current()
        before = os.times()

        def sample() -> None:
            while not self._stop.wait(0.2):
                self.peak_bytes = max(self.peak_bytes, self.current())

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self.peak_bytes = max(self.peak_bytes, self.current())
            after = os.times()
            self.cpu_s = after.user + after.system - before.user - before.system
            self.children_cpu_s = (
                after.children_user + after.children_system - before.children_user - before.children_system
            )

    @property
    def megabytes(self) -> int:
        return round(self.peak_bytes / 2**20)

    def report(self, wall_s: float) -> dict[str, Any]:
        cores = len(os.sched_getaffinity(0))
        used = self.cpu_s + self.children_cpu_s
        return {
            "peak_rss_mb": self.megabytes,
            "cpu_s": round(self.cpu_s, 1),
            "children_cpu_s": round(self.children_cpu_s, 1),
            "cores_busy": round(used / (wall_s * cores), 3) if wall_s else None,
        }


def corpus_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "answers.json")


def media_inventory(files: Sequence[Path]) -> dict[str, Any]:
    """Files per media type and the seconds of sound and pictures among them."""
    kinds: dict[str, int] = {}
    seconds = 0.0
    for path in files:
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
        media_type = detect_media_type(path.name, head, path.stat().st_size).media_type.value
        if media_type in ("video", "audio"):
            try:
                info = probe_media(path)
                media_type, seconds = info.media_type.value, seconds + (info.duration_s or 0.0)
            except Exception:  # noqa: BLE001 - a bad file is the pipeline's to report
                media_type = "unreadable"
        kinds[media_type] = kinds.get(media_type, 0) + 1
    return {"files": len(files), "by_type": kinds, "media_seconds": round(seconds, 1)}


def run_ceiling(files: Sequence[Path], settings: Settings) -> dict[str, Any]:
    direct = DirectAnalysis(settings)
    began = time.perf_counter()
    direct.load()
    loaded = time.perf_counter()
    failed = 0
    with PhaseUsage().watching() as usage:
        for path in files:
            try:
                direct.analyse(path)
            except Exception:  # noqa: BLE001 - the pipeline fails such a file too; counted
                failed += 1
        wall = time.perf_counter() - loaded
    return {
        "model_load_s": round(loaded - began, 2),
        "wall_s": round(wall, 2),
        "passages": direct.passages,
        "seconds_by_part": direct.seconds_by_kind,
        "failed_files": failed,
        **usage.report(wall),
    }


HEAVY_STAGES = {spec.name.value for spec in CATALOG.values() if spec.worker is WorkerClass.HEAVY}


def _fallback(assets: Sequence[Asset]) -> dict[str, Any]:
    """The speech cascade (when configured): chunks the fast model transcribed and the mean share
    of their audio the full model transcribed again (the asr_fallback quality signal)."""
    chunks, total = 0, 0.0
    for asset in assets:
        for sample in getattr(asset.quality, "samples", []):
            if sample.signal == "asr_fallback":
                chunks, total = chunks + sample.n, total + sample.total
    return {"chunks": chunks, "fallback_rate": round(total / chunks, 4) if chunks else None}


def worker_seconds(assets: Sequence[Asset]) -> dict[str, float]:
    """Seconds each stage kept a worker busy: a batched call serving n messages (each asset
    records the whole call) counts once, as n shares of 1/n, and calls run side by side share
    the worker's time the same way (``StageTiming.worker_seconds``)."""
    busy: dict[str, float] = {}
    for asset in assets:
        for timing in asset.timings:
            share = timing.worker_seconds
            if share is not None:
                busy[timing.stage] = busy.get(timing.stage, 0.0) + share
    return {stage: round(seconds, 2) for stage, seconds in sorted(busy.items(), key=lambda item: -item[1])}


def _cost(assets: Sequence[Asset]) -> dict[str, Any]:
    """The insight cost model over what these analyses used: heavy-step seconds priced as the GPU
    worker's instance time, measured here on this machine's CPU (so an upper bound for a GPU)."""
    summary_ = summarize_costs(assets)
    per_hour = summary_.per_media_hour_usd
    return {
        "per_media_hour_usd": round(per_hour, 4) if per_hour is not None else None,
        "per_thousand_images_usd": round(summary_.per_thousand_images_usd or 0.0, 4),
        "managed_per_media_hour_usd": round(summary_.managed_per_media_hour_usd, 2),
    }


def _upload_and_wait(runtime: LocalRuntime, plan: Sequence[PlannedUpload]) -> tuple[list[Asset], float]:
    assert runtime.services is not None
    began = time.perf_counter()
    uploaded = upload(runtime.services, plan)
    assets = runtime.wait_for([u.asset_id for u in uploaded], timeout_s=4 * 3600)
    wall = time.perf_counter() - began
    # A terminal step records its own stage time just after the status it sets: read them again
    # once the workers are idle, so every finished stage counts in the figures.
    runtime.wait_until_idle(timeout_s=60)
    again = (runtime.services.registry.get(asset.asset_id) for asset in assets)
    return [asset for asset in again if asset is not None], wall


def _answers(hit: Any, answer: dict[str, Any], label: str) -> bool:
    """Whether ``hit`` is a moment of the answer's file, at the answer's time for sound and pictures."""
    if not hit.source.endswith(f"/{label}/{answer['file']}"):
        return False
    if answer["start"] is None or hit.start is None or hit.end is None:
        return True
    return bool(hit.start <= answer["end"] + 1 and hit.end >= answer["start"] - 1)


def _recall(runtime: LocalRuntime, answers_file: Path, label: str) -> dict[str, Any]:
    """Recall@5 (hybrid) of known answers: a hit counts when it is a moment of a file that says
    or shows the text (at the time it does, for sound and pictures)."""
    assert runtime.services is not None
    answers = json.loads(answers_file.read_text(encoding="utf-8"))["answers"]
    where: dict[str, list[dict[str, Any]]] = {}
    for answer in answers:
        where.setdefault(answer["text"], []).append(answer)
    texts = sorted(where)
    asked = texts[:: max(1, len(texts) // QUESTIONS)][:QUESTIONS]
    found, missed = 0, []
    for text in asked:
        hits = runtime.services.search.search(SearchQuery(text=text, k=5, mode=SearchMode.HYBRID)).hits
        if any(_answers(hit, answer, label) for hit in hits for answer in where[text]):
            found += 1
        else:
            missed.append(text)
    recall = round(found / len(asked), 3) if asked else None
    return {"questions": len(asked), "found_at_5": found, "recall_at_5": recall, "missed": missed}


def run_pipeline(
    folder: Path, settings: Settings, light_workers: int, *, copies: bool, home: Path | None = None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="medialens-bench-") as tmp:
        home_settings = Settings(home=home or Path(tmp) / "home", model_cache=settings.models_dir)
        runtime = LocalRuntime(home_settings, light_workers=light_workers)
        runtime.start()
        try:
            plan, _ = plan_uploads([folder], home_settings.drop_prefix)
            plan = [p for p in plan if p.path.name != "answers.json"]
            with PhaseUsage().watching() as usage:
                assets, wall = _upload_and_wait(runtime, plan)
            console.print(f"[dim]pipeline: {wall:.1f} s[/]")
            result: dict[str, Any] = {
                "wall_s": round(wall, 2),
                "succeeded": sum(a.status is AssetStatus.SUCCEEDED for a in assets),
                "failed": sum(a.status is AssetStatus.FAILED for a in assets),
                "moments": sum(a.moment_count for a in assets),
                **usage.report(wall),
                "stages": summary(assets)["stages"],
                "worker_seconds": worker_seconds(assets),
                "speech_cascade": _fallback(assets),
                "cost": _cost(assets),
            }
            answers = folder / "answers.json"
            if answers.exists():
                result["search"] = _recall(runtime, answers, folder.name)
            if copies:
                copy_of = f"/{folder.name}-copy/"
                again = [PlannedUpload(p.path, p.key.replace(f"/{folder.name}/", copy_of, 1)) for p in plan]
                copied, copy_wall = _upload_and_wait(runtime, again)
                reused = [a for a in copied if getattr(a, "reused_from", None)]  # older versions: none
                inference = sum(1 for a in copied for stage in a.stage_seconds() if stage in HEAVY_STAGES)
                result["copies"] = {
                    "files": len(copied),
                    "wall_s": round(copy_wall, 2),
                    "succeeded": sum(a.status is AssetStatus.SUCCEEDED for a in copied),
                    "reused": len(reused),
                    "heavy_steps_run": inference,
                    "moments": sum(a.moment_count for a in copied),
                }
        finally:
            runtime.stop()
    return result


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    cap_malloc_arenas()  # as the workers do at start, before any model's threads
    folder = args.folder if args.folder is not None else make_corpus(args.corpus_dir, Mix(seed=args.seed))
    files = corpus_files(folder)
    settings = get_settings()
    inventory = media_inventory(files)
    results: dict[str, Any] = {
        "command": command,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "corpus": {"folder": folder.name, **inventory},
        "settings": {
            "speech_model": settings.speech_model,
            "speech_fast_model": getattr(settings, "speech_fast_model", None),
        },
    }
    console.print(f"[dim]{len(files)} files, {inventory['media_seconds']} s of media in {folder}[/]")
    if not args.no_ceiling:
        results["ceiling"] = run_ceiling(files, settings)
        console.print(f"[dim]ceiling: {results['ceiling']['wall_s']} s[/]")
        reset_models()  # the ceiling's own speech model (one transcription at a time) goes
    load_models(settings)  # the pipeline's models start loaded, as the ceiling's did
    if args.home is not None and args.home.exists() and any(args.home.iterdir()):
        raise SystemExit(f"--home {args.home} is not empty: the benchmark needs a fresh home")
    results["pipeline"] = run_pipeline(folder, settings, args.light_workers, copies=not args.no_copies, home=args.home)
    media = inventory["media_seconds"]
    for phase in ("ceiling", "pipeline"):
        if phase in results and media:
            results[phase]["times_real_time"] = round(media / results[phase]["wall_s"], 2)
    if "ceiling" in results:
        results["overhead"] = round(results["pipeline"]["wall_s"] / results["ceiling"]["wall_s"] - 1, 3)
    stages, busy = results["pipeline"]["stages"], results["pipeline"]["worker_seconds"]
    total = sum(busy.values()) or 1.0
    for stage, stats in stages.items():
        stats["worker_s"] = busy.get(stage, 0.0)
        stats["share"] = round(busy.get(stage, 0.0) / total, 3)
    return results


def _cpu(phase: dict[str, Any]) -> str:
    return (
        f"CPU {phase['cpu_s']} s + {phase['children_cpu_s']} s in programs it ran "
        f"({phase['cores_busy'] * 100:.0f} % of the cores busy)"
    )


def print_results(results: dict[str, Any]) -> None:
    corpus, pipeline = results["corpus"], results["pipeline"]
    console.print(
        f"[bold]corpus[/] {corpus['folder']}: {corpus['files']} files {corpus['by_type']}, "
        f"{corpus['media_seconds']} s of sound and pictures"
    )
    if "ceiling" in results:
        ceiling = results["ceiling"]
        console.print(
            f"[bold]ceiling[/] (models called directly, one file after another): {ceiling['wall_s']} s → "
            f"{ceiling.get('times_real_time')}x real time, {ceiling['passages']} passages, "
            f"{ceiling['failed_files']} files refused, peak RSS {ceiling['peak_rss_mb']} MB, {_cpu(ceiling)}; "
            f"seconds by part: {ceiling['seconds_by_part']}"
        )
    console.print(
        f"[bold]pipeline[/]: {pipeline['wall_s']} s → [bold green]{pipeline.get('times_real_time')}x real time[/], "
        f"{pipeline['succeeded']} succeeded, {pipeline['failed']} failed, {pipeline['moments']} moments, "
        f"peak RSS {pipeline['peak_rss_mb']} MB, {_cpu(pipeline)}"
    )
    if "overhead" in results:
        console.print(f"[bold]pipeline overhead over the ceiling[/]: {results['overhead'] * 100:+.1f} %")
    cascade = pipeline["speech_cascade"]
    console.print(
        f"[bold]speech cascade[/] ({results['settings']['speech_fast_model'] or 'off'}): "
        f"{cascade['chunks']} chunks through the fast model, fallback rate {cascade['fallback_rate']}"
    )
    cost = pipeline["cost"]
    console.print(
        f"[bold]cost[/] (list prices; heavy seconds measured on this CPU priced as GPU instance time): "
        f"${cost['per_media_hour_usd']} per media hour (managed services ${cost['managed_per_media_hour_usd']}), "
        f"${cost['per_thousand_images_usd']} per 1,000 images"
    )
    if "search" in pipeline:
        search = pipeline["search"]
        console.print(
            f"[bold]search[/]: {search['found_at_5']}/{search['questions']} known answers in the top 5 (hybrid)"
        )
    if "copies" in pipeline:
        copies = pipeline["copies"]
        console.print(
            f"[bold]same bytes again under other keys[/]: {copies['succeeded']}/{copies['files']} in "
            f"{copies['wall_s']} s, {copies['reused']} analyses reused, {copies['heavy_steps_run']} heavy steps run"
        )
    table = Table(title="pipeline stages (per asset: a batched call counts for each asset it served; worker s: once)")
    for column in ("stage", "runs", "p50 s", "p95 s", "worker s", "share"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage, stats in sorted(results["pipeline"]["stages"].items(), key=lambda item: -item[1]["worker_s"]):
        table.add_row(
            stage,
            str(stats["count"]),
            f"{stats['p50_s']:.2f}",
            f"{stats['p95_s']:.2f}",
            f"{stats['worker_s']:.1f}",
            f"{stats['share'] * 100:.1f} %",
        )
    console.print(table)
    console.print(f"[dim]reproduce: {results['command']}[/]")
