"""Load: many small files through the whole embedded pipeline in one runner, with the accounting
a load test owes (every input in exactly one terminal state, no duplicates) and what the runner
cost while it ran: files per second, peak resident memory and peak threads.

Each file is a short text document with its own sentence (so every asset is distinct and its
moment findable); every ``--bad-every`` th file is a corrupt PDF that must end FAILED.

Example::

    .venv/bin/python scripts/bench_load.py --files 1000 --json .bench/load.json
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shlex
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_embeddings
from medialens.domain.assets import AssetStatus
from medialens.domain.search import SearchMode, SearchQuery
from medialens.local.runtime import LocalRuntime
from medialens.local.uploads import plan_uploads, upload
from medialens.settings import Settings, get_settings

console = Console()


def write_files(folder: Path, count: int, bad_every: int, seed: int) -> dict[str, str]:
    """The inputs, and each good file's sentence (what a search must find)."""
    sentences = bench_embeddings.make_sentences(count, seed)
    expected: dict[str, str] = {}
    for n in range(count):
        if bad_every and n % bad_every == bad_every - 1:
            (folder / f"broken-{n:05d}.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 4)
            continue
        text = f"Item {n}. {sentences[n]}\n"
        (folder / f"note-{n:05d}.txt").write_text(text)
        expected[f"note-{n:05d}.txt"] = sentences[n]
    return expected


class Sampler:
    """Peak resident memory (the kernel's high-water mark) and peak live threads, sampled."""

    def __init__(self, every_s: float = 0.2) -> None:
        self.every_s = every_s
        self.peak_threads = threading.active_count()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.peak_threads = max(self.peak_threads, threading.active_count())

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @staticmethod
    def peak_rss_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def run(files: int, bad_every: int, seed: int, timeout_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="medialens-load-") as scratch:
        root = Path(scratch)
        inputs = root / "inputs"
        inputs.mkdir()
        expected = write_files(inputs, files, bad_every, seed)
        # The project's model store (make models built it), not a new one per run.
        settings = Settings(home=root / "home", model_cache=get_settings().model_cache)
        rss_before = Sampler.peak_rss_mb()
        with Sampler() as sampler, LocalRuntime(settings) as runtime:
            assert runtime.services is not None
            started = time.perf_counter()
            plan, _ = plan_uploads([inputs], settings.drop_prefix)
            uploaded = upload(runtime.services, plan)
            uploaded_s = time.perf_counter() - started
            assets = runtime.wait_for([u.asset_id for u in uploaded], timeout_s=timeout_s)
            elapsed = time.perf_counter() - started
            registry = runtime.services.registry
            everything = registry.iter_all()
            # Every good file's own sentence finds it first (a sample of 50, keyword search).
            by_id = {u.asset_id: u.path.name for u in uploaded}
            sample = [u for u in uploaded if u.path.name in expected][:50]
            found = 0
            for item in sample:
                words = expected[item.path.name].split()[:40]  # a query, not the whole paragraph
                query = SearchQuery(text=" ".join(words), k=1, mode=SearchMode.KEYWORD)
                hits = runtime.services.search.search(query).hits
                found += bool(hits) and hits[0].asset_id == item.asset_id
        statuses = Counter(asset.status.value for asset in assets)
        terminal = sum(1 for asset in assets if asset.status.terminal)
        failed = [by_id[a.asset_id] for a in assets if a.status is AssetStatus.FAILED]
        failed_good = [name for name in failed if name in expected]
        return {
            "files": files,
            "bad_files": files - len(expected),
            "uploaded": len(uploaded),
            "assets_in_registry": len(everything),
            "duplicates": len(everything) - len({a.source.key for a in everything}),
            "statuses": dict(statuses),
            "not_terminal": len(uploaded) - terminal,
            "good_files_failed": failed_good[:10],
            "upload_s": round(uploaded_s, 1),
            "seconds": round(elapsed, 1),
            "files_per_s": round(files / elapsed, 2),
            "peak_rss_mb": round(sampler.peak_rss_mb(), 0),
            "rss_before_mb": round(rss_before, 0),
            "peak_threads": sampler.peak_threads,
            "found_first": f"{found}/{len(sample)}",
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--bad-every", type=int, default=50, help="Every n-th file is a corrupt PDF (0: none).")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    figures = run(args.files, args.bad_every, args.seed, args.timeout)
    report = {
        "command": shlex.join(["python", "scripts/bench_load.py", *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {platform.python_version()}",
        **figures,
    }
    console.print_json(json.dumps(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    complete = figures["not_terminal"] == 0 and figures["duplicates"] == 0 and not figures["good_files_failed"]
    sys.exit(0 if complete else 1)


if __name__ == "__main__":
    main()
