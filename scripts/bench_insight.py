"""What operations insight costs: the time the steps spend recording what their models said
(``registry.add_quality``) and the time every emitted metric spends in the embedded metric store
(``MetricStore.record``), as a share of the ingest wall time, measured in one run over the sample
media (documents, scans, images, audio, video); then the time to build the report and draw it.
``--compare`` runs the same ingest again with both switched off and prints both walls (the first
run also loads the models, so compare the shares, not the walls).

    .venv/bin/python scripts/bench_insight.py --json .bench/insight.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_sample_media
from medialens.adapters.registry.base import AssetRegistry
from medialens.domain.assets import utcnow
from medialens.insight.html import render_html
from medialens.insight.report import build_report
from medialens.local.metric_store import MetricStore
from medialens.local.runtime import LocalRuntime
from medialens.local.uploads import plan_uploads, upload
from medialens.settings import Settings, get_settings


class Stopwatch:
    """Accumulates the time spent inside one method, across threads."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._lock = threading.Lock()

    def wrap(self, method: Callable[..., Any], enabled: bool) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if not enabled:
                return None  # what the steps would have recorded is dropped
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                with self._lock:
                    self.seconds += time.perf_counter() - started
                    self.calls += 1

        return timed


def ingest(media: Path, home: Path, record: bool) -> dict[str, Any]:
    original = AssetRegistry.add_quality
    original_record = MetricStore.record
    watch, metrics = Stopwatch(), Stopwatch()
    AssetRegistry.add_quality = watch.wrap(original, record)  # type: ignore[method-assign]
    MetricStore.record = metrics.wrap(original_record, record)  # type: ignore[method-assign]
    try:
        settings = Settings(home=home, model_cache=get_settings().models_dir)
        runtime = LocalRuntime(settings)
        runtime.start()
        try:
            assert runtime.services is not None
            plan, _ = plan_uploads([media], settings.drop_prefix)
            started = time.perf_counter()
            uploaded = upload(runtime.services, plan)
            assets = runtime.wait_for([u.asset_id for u in uploaded], timeout_s=3600)
            wall = time.perf_counter() - started
            history = runtime.services.registry.iter_all()
        finally:
            runtime.stop()
    finally:
        AssetRegistry.add_quality = original  # type: ignore[method-assign]
        MetricStore.record = original_record  # type: ignore[method-assign]
    result: dict[str, Any] = {
        "assets": len(assets),
        "ingest_wall_s": round(wall, 2),
        "quality_calls": watch.calls,
        "quality_s": round(watch.seconds, 4),
        "quality_share_of_wall": round(watch.seconds / wall, 5),
        "metric_samples": metrics.calls,
        "metric_store_s": round(metrics.seconds, 4),
        "metrics_share_of_wall": round(metrics.seconds / wall, 5),
        "insight_share_of_wall": round((watch.seconds + metrics.seconds) / wall, 5),
    }
    if record:
        started = time.perf_counter()
        report = build_report(history, utcnow() - timedelta(hours=1))
        built = time.perf_counter()
        page = render_html(report)
        drawn = time.perf_counter()
        result |= {
            "report_build_s": round(built - started, 3),
            "report_draw_s": round(drawn - built, 3),
            "report_html_kib": len(page.encode()) // 1024,
            "quality_views": len(report.quality),
            "drift_scores": len(report.drift),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compare", action="store_true", help="also ingest with the recording switched off")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory(prefix="medialens-bench-insight-") as tmp:
        root = Path(tmp)
        make_sample_media.main(root / "media")
        results = {"recording": ingest(root / "media", root / "home-on", record=True)}
        if args.compare:
            results["not_recording"] = ingest(root / "media", root / "home-off", record=False)
    on = results["recording"]
    console.print(
        f"{on['assets']} assets in {on['ingest_wall_s']} s; quality recorded in {on['quality_calls']} calls, "
        f"{on['quality_s']} s = {on['quality_share_of_wall']:.3%} of the ingest wall time; "
        f"{on['metric_samples']} metric samples stored in {on['metric_store_s']} s = "
        f"{on['metrics_share_of_wall']:.3%}; together {on['insight_share_of_wall']:.3%}; "
        f"report built in {on['report_build_s']} s, drawn in {on['report_draw_s']} s ({on['report_html_kib']} KiB)"
    )
    if "not_recording" in results:
        console.print(f"the same ingest without recording: {results['not_recording']['ingest_wall_s']} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
