#!/usr/bin/env python3
"""Which vector finds a picture by what it shows: the label text, or ConSE.

For every image of a folder the classifier's labels are computed once; then each image gets one
vector per method and text model, and every question ranks the images:

* ``label-text``: the visual moment's text as the pipeline writes it (the kept labels, see
  ``medialens.media.visual``), embedded as a passage;
* ``label-text-N``: the ``N`` most probable labels, whatever their probability;
* ``conse-K``: ConSE (Norouzi et al., 2014): the probability-weighted mean of the embeddings of
  the ``K`` most probable class names, normalised.

Questions are a JSON list of ``{"query": ..., "expect": ["file name", ...]}``; the script prints
recall@1, recall@3 and the mean reciprocal rank per method and model, and the time it took.

    python scripts/eval_visual.py FOLDER QUESTIONS.json [--models multilingual-e5-small all-minilm-l6-v2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from medialens.media.visual import LABEL_SEPARATOR, VisualLabel, kept_labels
from medialens.ml.text_embedding import get_text_embedder
from medialens.ml.visual_labels import get_image_labeler
from medialens.settings import get_settings

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


def _normalised(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def compare(
    images: list[Path],
    questions: list[dict[str, Any]],
    models: list[str],
    *,
    conse_k: list[int],
    label_counts: list[int],
) -> list[dict[str, Any]]:
    """One row per text model and method: recall@1, recall@3 and MRR over the questions."""
    settings = get_settings()
    labeler = get_image_labeler(settings)
    top = max([*conse_k, *label_counts, settings.visual_label_max])
    labels: list[list[VisualLabel]] = [labeler.classify([path.read_bytes()], top_k=top)[0] for path in images]
    kept = [
        kept_labels(found, min_probability=settings.visual_label_min_probability, max_labels=settings.visual_label_max)
        for found in labels
    ]
    texts = {"label-text": [LABEL_SEPARATOR.join(label.text for label in found) for found in kept]}
    for count in label_counts:
        texts[f"label-text-{count}"] = [LABEL_SEPARATOR.join(label.text for label in found[:count]) for found in labels]
    names = [path.name for path in images]
    rows = []
    for model in models:
        embedder = get_text_embedder(settings, model)
        vectors = {method: _normalised(embedder.embed(text)) for method, text in texts.items()}
        class_text = {label.class_index: label.text for found in labels for label in found}
        classes = sorted(class_text)
        class_vectors = dict(zip(classes, embedder.embed([class_text[c] for c in classes]), strict=True))
        for k in conse_k:
            mixed = np.stack(
                [sum(label.probability * class_vectors[label.class_index] for label in found[:k]) for found in labels]
            )
            vectors[f"conse-{k}"] = _normalised(mixed)
        queries = _normalised(np.stack([embedder.embed_query(q["query"]) for q in questions]))
        for method, matrix in vectors.items():
            ranks = []
            for question, query in zip(questions, queries, strict=True):
                order = [names[i] for i in np.argsort(-(matrix @ query))]
                ranks.append(min(order.index(name) for name in question["expect"]) + 1)
            rows.append(
                {
                    "model": model,
                    "method": method,
                    "questions": len(ranks),
                    "recall_at_1": sum(rank == 1 for rank in ranks),
                    "recall_at_3": sum(rank <= 3 for rank in ranks),
                    "mrr": round(sum(1 / rank for rank in ranks) / len(ranks), 3),
                }
            )
    return rows


def images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def print_rows(rows: list[dict[str, Any]]) -> None:
    print(f"{'model':<24}{'method':<16}{'R@1':>6}{'R@3':>6}{'MRR':>7}")
    for row in rows:
        n = row["questions"]
        print(
            f"{row['model']:<24}{row['method']:<16}{row['recall_at_1']:>4}/{n}{row['recall_at_3']:>4}/{n}"
            f"{row['mrr']:>7.3f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("questions", type=Path)
    parser.add_argument("--models", nargs="+", default=["multilingual-e5-small", "all-minilm-l6-v2"])
    parser.add_argument("--conse-k", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--label-counts", type=int, nargs="+", default=[3, 5, 8])
    args = parser.parse_args()
    questions = json.loads(args.questions.read_text(encoding="utf-8"))
    images = images_in(args.folder)
    if not images:
        print(f"no images in {args.folder}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    rows = compare(images, questions, args.models, conse_k=args.conse_k, label_counts=args.label_counts)
    print(f"{len(images)} images, {len(questions)} questions ({time.perf_counter() - started:.1f}s)")
    print_rows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
