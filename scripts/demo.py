"""`make demo`: sample media → the local pipeline → example searches, checked against the answers.

It drives the installed ``medialens`` command exactly as a user would (ingest, search, status),
then checks every answer against the corpus's expected answers and exits non-zero if one is wrong.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import make_sample_media  # noqa: E402 - the sibling script, importable once scripts/ is on the path

console = Console()
CLI = str(Path(sys.executable).with_name("medialens"))
TOP_K = 3


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    console.print(f"[bold cyan]$ medialens {' '.join(args)}[/]")
    result = subprocess.run([CLI, *args], text=True, capture_output=True, check=False)
    if check and result.returncode not in (0, 1):
        console.print(result.stdout, result.stderr)
        raise SystemExit(f"medialens {args[0]} failed with exit code {result.returncode}")
    return result


def check_statuses(expected: dict[str, Any], corpus: Path) -> list[str]:
    status = json.loads(run("status", "--json").stdout)
    by_key = {row["source"].split("/incoming/", 1)[1]: row for row in status["assets"]}
    problems = []
    for item in expected["files"]:
        key = f"{corpus.name}/{item['path']}"
        row = by_key.get(key)
        if row is None:
            problems.append(f"{key}: not in status")
            continue
        if row["status"] != item["status"]:
            problems.append(f"{key}: {row['status']} (expected {item['status']}): {row['error_reason']}")
        elif item["reason_contains"] and item["reason_contains"] not in (row["error_reason"] or ""):
            problems.append(f"{key}: reason {row['error_reason']!r} lacks {item['reason_contains']!r}")
    return problems


def _found(query: dict[str, Any], hit: dict[str, Any]) -> bool:
    if not make_sample_media.answers(query, hit["source"]) or query["expect_text_contains"] not in hit["text"]:
        return False
    if query["expect_page"] is not None and hit["page"] != query["expect_page"]:
        return False
    if query.get("expect_start") is not None:  # a moment in time: the ranges must overlap
        return hit["start"] is not None and hit["start"] < query["expect_end"] and hit["end"] > query["expect_start"]
    return True


def _where(hit: dict[str, Any]) -> str:
    name = hit["source"].rsplit("/", 1)[-1]
    if hit["start"] is not None:
        return f"{name}, {hit['start']:.1f}-{hit['end']:.1f} s ({hit['modality']})"
    return name + (f", page {hit['page']}" if hit["page"] else "")


def check_searches(expected: dict[str, Any]) -> list[str]:
    table = Table(title="example searches (hybrid: BM25 + k-NN)", show_lines=True)
    for column in ("question", "rank", "answer found", "where", "score"):
        table.add_column(column, overflow="fold")
    problems = []
    for query in expected["queries"]:
        hits = json.loads(run("search", query["query"], "-k", str(TOP_K), "--json").stdout)["hits"]
        rank = next((n for n, hit in enumerate(hits, 1) if _found(query, hit)), None)
        if rank is None:
            problems.append(f"{query['query']!r}: no hit in the top {TOP_K} from {query['expect_file']}")
            table.add_row(query["query"], "[red]-[/]", hits[0]["text"][:160] if hits else "(none)", "", "")
            continue
        hit = hits[rank - 1]
        text = hit["text"]
        at = text.find(query["expect_text_contains"])
        snippet = text[max(0, at - 60) : at + 100].strip()
        rank_style = "green" if rank == 1 else "yellow"
        table.add_row(query["query"], f"[{rank_style}]{rank}[/]", f"…{snippet}…", _where(hit), f"{hit['score']:.3f}")
    console.print(table)
    return problems


def main() -> int:
    home = Path(os.environ.get("MEDIALENS_HOME", ROOT / ".medialens"))
    corpus = ROOT / "sample-media"
    expected = json.loads(make_sample_media.main(corpus).read_text())
    console.rule("[bold]medialens demo")
    console.print(f"sample media in {corpus}, state in {home}\n")

    ingest = run("ingest", str(corpus), "--wait")
    console.print(ingest.stdout.rstrip())
    console.print(f"[dim]{ingest.stderr.strip().splitlines()[-1] if ingest.stderr.strip() else ''}[/]\n")

    problems = check_statuses(expected, corpus)
    problems += check_searches(expected)
    status = run("status")
    console.print(status.stdout)
    if problems:
        console.print("[bold red]demo found wrong answers:[/]")
        for problem in problems:
            console.print(f"  [red]✗[/] {problem}")
        return 1
    console.print(
        "[bold green]✓ every file reached its expected state and every search found its answer[/]\n"
        'try: [bold].venv/bin/medialens search "how many vacation days do employees get" -k 5[/]'
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
