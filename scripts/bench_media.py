"""Media benchmark: every stage of the video/audio/image path as multiples of real time, measured
in one run, plus the whole local pipeline on sample media.

Parts (each also runs on its own):
- vision (``bench_vision.py``): shot detection as multiples of real time (downscaled vs full decode), keyframes
  kept vs skipped by perceptual hash, OCR frames/s batched vs one at a time, OCR fp32 vs int8;
- speech (``bench_speech.py``): ASR as multiples of real time int8 vs float32, batched vs one chunk at a time,
  tiny.en vs base, and a one-hour file end to end (media minutes per wall minute, peak RSS);
- embeddings (``bench_embeddings.py``): sentences/s fp32 vs int8, batched vs one at a time;
- pipeline: the sample video, recordings and images through the real local pipeline (state
  machine, workers, index): media minutes per wall minute and per-stage time.

Model runtimes pick CUDA when the machine has it (onnxruntime's CUDA provider, CTranslate2's
CUDA build), so on a GPU machine the same command measures the CUDA path; the report names the
providers used. Example::

    .venv/bin/python scripts/bench_media.py --quick --json .bench/media.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import onnxruntime as ort
from rich.console import Console
from rich.table import Table

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS))

import bench_embeddings  # noqa: E402 - siblings, importable once scripts/ is on the path
import sample_audio  # noqa: E402
import sample_video  # noqa: E402
from medialens.domain.assets import AssetStatus  # noqa: E402
from medialens.local.runtime import LocalRuntime  # noqa: E402
from medialens.local.uploads import plan_uploads, upload  # noqa: E402
from medialens.reporting import summary  # noqa: E402
from medialens.settings import Settings, get_settings  # noqa: E402

console = Console()


def run_part(script: str, args: list[str], out: Path) -> dict[str, Any]:
    """Runs a part in its own process (clean RSS figures, its own table) and reads its JSON."""
    command = [sys.executable, str(SCRIPTS / script), *args, "--json", str(out)]
    console.rule(f"[bold]{script} {' '.join(args)}")
    subprocess.run(command, check=True)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def pipeline_on_media(work: Path) -> dict[str, Any]:
    """The sample video, recordings and images through the whole local pipeline."""
    folder = work / "media"
    sample_video.main(folder, remuxed=False)
    sample_audio.write_audio(folder)
    files = [folder / sample_video.VIDEO, folder / sample_video.VIDEO_WEBM, folder / "audio", folder / "images"]
    settings = Settings(home=work / "home", model_cache=get_settings().models_dir)
    runtime = LocalRuntime(settings).start()
    try:
        assert runtime.services is not None
        plan, _ = plan_uploads(files, settings.drop_prefix)
        started = time.perf_counter()
        uploaded = upload(runtime.services, plan)
        assets = runtime.wait_for([u.asset_id for u in uploaded], timeout_s=3600)
        wall = time.perf_counter() - started
    finally:
        runtime.stop()
    media_s = sum(a.metadata.get("details", {}).get("duration_s") or 0.0 for a in assets)
    report = summary(assets)
    return {
        "files": len(assets),
        "succeeded": sum(1 for a in assets if a.status is AssetStatus.SUCCEEDED),
        "media_minutes": round(media_s / 60, 2),
        "wall_s": round(wall, 1),
        "media_minutes_per_wall_minute": round(media_s / wall, 2),
        "moments": report["moments"],
        "stages": report["stages"],
        "note": "cold: the first file of each kind loads its models inside the measured time",
    }


def print_pipeline(result: dict[str, Any]) -> None:
    console.rule("[bold]pipeline on sample media")
    console.print(
        f"{result['succeeded']}/{result['files']} files, {result['media_minutes']} media minutes in "
        f"{result['wall_s']} s → [bold green]{result['media_minutes_per_wall_minute']} media min per wall min[/] "
        f"({result['moments']} moments; {result['note']})"
    )
    table = Table(title="per-stage time (worker-side)")
    for column in ("stage", "runs", "p50 s", "p95 s", "total s"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage, stats in result["stages"].items():
        table.add_row(
            stage, str(stats["count"]), f"{stats['p50_s']:.2f}", f"{stats['p95_s']:.2f}", f"{stats['total_s']:.1f}"
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter inputs everywhere (~10 min on 2 cores)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["vision", "speech", "embeddings", "pipeline"])
    parser.add_argument("--json", type=Path, help="also write every part's results here")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "command": shlex.join([".venv/bin/python", "scripts/bench_media.py", *sys.argv[1:]]),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "onnxruntime_providers": ort.get_available_providers(),
    }
    with tempfile.TemporaryDirectory(prefix="medialens-bench-media-") as tmp:
        work = Path(tmp)
        if "vision" not in args.skip:
            vision_args = ["--seconds", "30" if args.quick else "60"]
            results["vision"] = run_part("bench_vision.py", vision_args, work / "vision.json")
        if "speech" not in args.skip:
            results["speech"] = run_part("bench_speech.py", ["--quick"] if args.quick else [], work / "speech.json")
        if "embeddings" not in args.skip:
            console.rule("[bold]text embeddings")
            settings = get_settings()
            results["embeddings"] = bench_embeddings.run(
                argparse.Namespace(
                    sentences=128 if args.quick else 256,
                    threads=0,
                    batch_size=32,
                    repeats=3,
                    seed=7,
                    model=settings.text_embedding_model,
                    cache_dir=settings.models_dir,
                    rebuild=False,
                )
            )
            bench_embeddings.print_table(results["embeddings"])
        if "pipeline" not in args.skip:
            results["pipeline"] = pipeline_on_media(work)
            print_pipeline(results["pipeline"])
    console.print(f"[dim]providers: {results['onnxruntime_providers']}; reproduce: {results['command']}[/]")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
