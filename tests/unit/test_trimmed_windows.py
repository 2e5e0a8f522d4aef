"""Trimmed Whisper windows (medialens.ml.asr), on stand-in models: how much of a padded window is
encoded, which decodings are done again from the full 30 s, and where an unsure language is read
from. The real model's words and encoder passes are tested in tests/integration/test_asr.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from medialens.ml.asr import _OneEncoderPass, _TrimmedWindows, trimmed

pytestmark = pytest.mark.unit

FULL = 3000  # frames in a 30-s window


def padded(*speech_frames: int) -> np.ndarray:
    """A batch of windows with this many frames of (non-zero) features each, zero-padded to 30 s."""
    batch = np.zeros((len(speech_frames), 80, FULL), dtype=np.float32)
    for index, frames in enumerate(speech_frames):
        batch[index, :, :frames] = 0.25
    return batch


@pytest.mark.parametrize(
    ("speech_frames", "kept"),
    [
        ((0,), 1500),  # no speech: the minimum
        ((600,), 1500),  # 6 s + 3 s margin is under the 15-s minimum
        ((1234,), 1600),  # 12.34 s + 3 s, up to whole seconds
        ((2700,), FULL),  # the margin reaches the end: nothing to cut
        ((FULL,), FULL),
        ((600, 1900), 2200),  # a batch keeps its longest window's speech
    ],
)
def test_a_padded_window_is_cut_after_its_speech_and_margin(speech_frames: tuple[int, ...], kept: int) -> None:
    batch = padded(*speech_frames)
    cut = trimmed(batch)
    assert cut.shape == (len(speech_frames), 80, kept)
    assert np.array_equal(cut, batch[..., :kept])
    if kept == FULL:
        assert cut is batch


def test_silent_frames_inside_speech_are_not_taken_for_padding() -> None:
    batch = padded(1800)
    batch[0, :, 1000:1700] = 0.0  # a pause: only trailing zeros are padding
    assert trimmed(batch).shape[-1] == 2100


# --- stand-ins for faster-whisper's WhisperModel and its CTranslate2 model ---------------------------

END_OF_TEXT = 50257
TIMESTAMP = 50364


class Tokenizer:
    """Token ids are letters: id 97 is "a"."""

    def token_to_id(self, token: str) -> int:
        assert token == "<|endoftext|>"
        return END_OF_TEXT

    def decode(self, ids: list[int]) -> str:
        assert all(i < END_OF_TEXT for i in ids), "special tokens are not decoded"
        return "".join(chr(i) for i in ids)


@dataclass
class Result:
    sequences_ids: list[list[int]]


@dataclass
class Ctranslate2Model:
    """Decodes a loop from a trimmed encoding of window ``looping`` and words otherwise; reads a
    language whose probability depends on how much of the window it was given."""

    looping: int | None = None
    generated: list[tuple[int, int]] = field(default_factory=list)  # (windows, frames) per call
    trimmed_reading: list[tuple[str, float]] = field(default_factory=lambda: [("<|sv|>", 0.5), ("<|no|>", 0.4)])

    def generate(self, encoder_output: np.ndarray, prompts: list[list[int]], **_: Any) -> list[Result]:
        self.generated.append((encoder_output.shape[0], encoder_output.shape[-1]))
        results = []
        for index in range(len(prompts)):
            loop = index == self.looping and encoder_output.shape[-1] < FULL and len(prompts) > 1
            words = [ord(c) for c in "the same words " * 12] if loop else [ord(c) for c in "hello there"]
            results.append(Result([[TIMESTAMP, *words, TIMESTAMP + 50]]))
        return results

    def detect_language(self, encoder_output: np.ndarray) -> list[list[tuple[str, float]]]:
        trimmed = encoder_output.shape[-1] < FULL
        reading = self.trimmed_reading if trimmed else [("<|no|>", 0.9), ("<|sv|>", 0.1)]
        return [reading for _ in range(encoder_output.shape[0])]


class WhisperModel:
    def __init__(self, model: Ctranslate2Model) -> None:
        self.model = model
        self.hf_tokenizer = Tokenizer()
        self.max_length = 448
        self.encoded: list[tuple[int, ...]] = []
        self.feature_extractor = lambda audio: audio

    def encode(self, features: np.ndarray) -> np.ndarray:
        self.encoded.append(features.shape)
        return features


def test_a_trimmed_window_that_loops_is_decoded_again_from_its_full_encoding() -> None:
    model = WhisperModel(Ctranslate2Model(looping=1))
    windows = _TrimmedWindows(model)
    batch = padded(800, 1200)
    encoded = windows.encode(batch)
    results = windows.model.generate(encoded, [[1, 2, 3], [1, 2, 3]], max_length=448)
    assert model.encoded == [(2, 80, 1500), (1, 80, FULL)], "the batch trimmed, then the looping window whole"
    assert model.model.generated == [(2, 1500), (1, FULL)]
    assert [windows._model.hf_tokenizer.decode(r.sequences_ids[0][1:-1]) for r in results] == ["hello there"] * 2
    assert windows.redecoded == 1


def test_a_decoding_that_runs_to_the_token_limit_is_decoded_again() -> None:
    model = WhisperModel(Ctranslate2Model())
    windows = _TrimmedWindows(model)
    encoded = windows.encode(padded(800))
    # Random letters up to the limit (448 less the prompt's 4, less the end): not compressible.
    long = Result([[int(i) for i in np.random.default_rng(0).integers(ord("a"), ord("z") + 1, 443)]])
    guard = windows.model
    assert guard._looks_like_a_loop(long.sequences_ids[0], 4, {"max_length": 448})
    assert not guard._looks_like_a_loop(long.sequences_ids[0][:-40], 4, {"max_length": 448})
    assert not guard._looks_like_a_loop([ord(c) for c in "a short sentence"], 4, {"max_length": 448})
    windows.model.generate(encoded, [[1, 2, 3]], max_length=448)
    assert windows.redecoded == 0


def _identified(model: WhisperModel) -> tuple[_OneEncoderPass, str, float]:
    """A one-window transcription of unknown language, trimmed, once its language is read."""
    one_pass = _OneEncoderPass(_TrimmedWindows(model), batch_size=1)
    features = np.zeros((80, 701), dtype=np.float32)
    features[:, :700] = 0.25
    one_pass.feature_extractor(features)  # what the pipeline computes for its one window
    language, probability, _ = one_pass.detect_language(features=features)
    return one_pass, language, probability


def test_english_read_from_a_trimmed_window_is_decoded_from_that_encoding() -> None:
    model = WhisperModel(Ctranslate2Model(trimmed_reading=[("<|en|>", 0.95), ("<|cy|>", 0.02)]))
    one_pass, language, probability = _identified(model)
    assert (language, probability) == ("en", 0.95)
    assert one_pass.encode(padded(700)).shape[-1] == 1500, "the reading's own encoding, not a second pass"
    assert model.encoded == [(1, 80, 1500)]


def test_a_language_not_surely_english_is_read_and_decoded_from_the_whole_window() -> None:
    model = WhisperModel(Ctranslate2Model())
    one_pass, language, probability = _identified(model)
    assert (language, probability) == ("no", 0.9), "read from all 30 s when the trimmed reading was unsure"
    assert model.encoded == [(1, 80, 1500), (1, 80, FULL)]
    assert one_pass.encode(padded(700)).shape[-1] == FULL, "the full encoding, not a third pass"
    assert one_pass.encode(padded(900, 900)).shape[-1] == FULL, "and the transcription's next batches whole"
    assert len(model.encoded) == 3


def test_a_sure_language_other_than_english_is_decoded_from_the_whole_window() -> None:
    model = WhisperModel(Ctranslate2Model(trimmed_reading=[("<|de|>", 0.97)]))
    one_pass, language, _ = _identified(model)
    assert language == "no", "read again over all 30 s"
    assert one_pass.encode(padded(700)).shape[-1] == FULL
