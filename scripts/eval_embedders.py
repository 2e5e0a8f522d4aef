"""Compares text embedders on an analysed home without re-running it: every moment's text is
embedded again by each model, each question too, and recall@k counts the questions whose
expected file has a moment in the top k (exact cosine, no index). ``routed`` is what search does
with the configured pair (``language_routed_fusion``: English questions ranked by both models
over English moments, by the multilingual one over the rest), min-max scaled over every moment
rather than over the top candidates.

    .venv/bin/python scripts/eval_embedders.py QUESTIONS.json --models multilingual-e5-small all-minilm-l6-v2

QUESTIONS.json as for ``scripts/eval_search.py`` (``query``, ``expect_file``, optional ``kind``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from medialens.adapters.index.fusion import min_max_normalise
from medialens.local.wiring import local_services
from medialens.ml.language import guess_language
from medialens.ml.text_embedding import get_text_embedder
from medialens.settings import get_settings

Scores = npt.NDArray[np.float32]


def _minmax(scores: Scores) -> Scores:
    return np.asarray(min_max_normalise([float(s) for s in scores]), dtype=np.float32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("questions", type=Path)
    parser.add_argument("--k", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--models", nargs="+", default=None, help="default: the configured pair")
    args = parser.parse_args()

    settings = get_settings()
    services = local_services(settings)
    raw = json.loads(args.questions.read_text(encoding="utf-8"))
    questions: list[dict[str, Any]] = raw["queries"] if isinstance(raw, dict) else raw
    moments = [
        m
        for asset in services.registry.iter_all()
        for m in services.index.asset_moments(asset.asset_id, limit=100_000)
        if m.text.strip()
    ]
    names = args.models or [m for m in (settings.text_embedding_model, settings.english_embedding_model) if m]
    scores: dict[str, Scores] = {}  # model -> (questions, moments)
    for name in names:
        embedder = get_text_embedder(settings, name)
        passages = embedder.embed([m.text for m in moments])
        queries = np.stack([embedder.embed_query(q["query"]) for q in questions])
        scores[name] = queries @ passages.T
    if settings.english_embedding_model in scores and settings.text_embedding_model in scores:
        english_group = np.array([m.language in (None, "en") for m in moments])
        routed = []
        for row, question in enumerate(questions):
            across = _minmax(scores[settings.text_embedding_model][row])
            if guess_language(question["query"]) != "en":
                routed.append(scores[settings.text_embedding_model][row])
                continue
            both = 0.5 * _minmax(scores[settings.english_embedding_model][row]) + 0.5 * across
            routed.append(np.where(english_group, both, across))
        scores["routed"] = np.stack(routed)

    print(f"{len(questions)} questions over {len(moments)} moments in {settings.home}")
    for name, matrix in scores.items():
        cells = []
        for k in args.k:
            found: Counter[str] = Counter()
            totals: Counter[str] = Counter()
            for row, question in enumerate(questions):
                kind = str(question.get("kind", "all"))
                totals[kind] += 1
                top = np.argsort(-matrix[row])[:k]
                found[kind] += any(moments[i].source.endswith(question["expect_file"]) for i in top)
            cells.append(f"@{k} " + " ".join(f"{kind} {found[kind]}/{totals[kind]}" for kind in sorted(totals)))
        print(f"  {name:24s} " + "   ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
