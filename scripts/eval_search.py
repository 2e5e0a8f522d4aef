"""Recall@k of searches over an analysed home: for each question, is a moment of the expected
file (and, when given, with the expected text) among the top k hits, per search mode?

    .venv/bin/python scripts/eval_search.py QUESTIONS.json [--k 5] [--modes semantic hybrid]

QUESTIONS.json is a list (or an object with a "queries" list, as ``sample-media.expected.json``)
of ``{"query": ..., "expect_file": ..., "expect_text_contains": ..., "kind": ...}``:
``expect_file`` matches the end of a hit's source URI; ``expect_text_contains`` and ``kind``
(a label to group results by, e.g. "same" / "cross" language) are optional. The home is
``MEDIALENS_HOME`` (or the settings' default), read in place; nothing is written to it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from medialens.domain.search import SearchMode, SearchQuery
from medialens.local.wiring import local_services
from medialens.settings import get_settings


def _questions(path: Path) -> list[dict[str, Any]]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    questions: list[dict[str, Any]] = raw["queries"] if isinstance(raw, dict) else raw
    return questions


def _found(question: dict[str, Any], source: str, text: str) -> bool:
    wanted = question.get("expect_text_contains")
    return source.endswith(question["expect_file"]) and (not wanted or wanted in text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("questions", type=Path)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument(
        "--modes", nargs="+", default=[m.value for m in SearchMode], choices=[m.value for m in SearchMode]
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    settings = get_settings()
    services = local_services(settings)
    questions = _questions(args.questions)
    report: dict[str, Any] = {"k": args.k, "embedding_model": settings.text_embedding_model, "modes": {}}
    for mode in args.modes:
        hits_by_kind: Counter[str] = Counter()
        totals: Counter[str] = Counter()
        missed: list[str] = []
        for question in questions:
            kind = str(question.get("kind", "all"))
            response = services.search.search(SearchQuery(text=question["query"], k=args.k, mode=SearchMode(mode)))
            totals[kind] += 1
            if any(_found(question, hit.source, hit.text) for hit in response.hits):
                hits_by_kind[kind] += 1
            else:
                missed.append(question["query"])
        report["modes"][mode] = {
            "recall": {kind: hits_by_kind[kind] / totals[kind] for kind in sorted(totals)},
            "found": {kind: f"{hits_by_kind[kind]}/{totals[kind]}" for kind in sorted(totals)},
            "missed": missed,
        }
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    print(f"recall@{args.k} with {report['embedding_model']} over {settings.home}")
    for mode, figures in report["modes"].items():
        found = "  ".join(f"{kind} {count}" for kind, count in figures["found"].items())
        print(f"  {mode:8s} {found}")
        for query in figures["missed"]:
            print(f"           missed: {query}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
