"""Speech recognition: Whisper (CTranslate2, through faster-whisper) from the model store.

A recognizer turns one chunk of 16 kHz mono audio into a :class:`ChunkTranscript`: segments
with Whisper's confidence figures, words with absolute start/end seconds and probabilities, and
the language (detected when the model is multilingual and none is given). On a machine with a
CUDA GPU it computes in float16, elsewhere in int8 (the weights ship as float16; CTranslate2
quantizes them as it loads them); ``version`` records which, and goes on every artifact.

    recognizer = get_speech_recognizer(settings)
    chunk_transcript = recognizer.transcribe(read_wav(chunk_wav), offset_s=chunk.start)

English speech may instead go through a :class:`SpeechCascade`: a smaller, faster model first, and
the full model only over the segments it was unsure of (``chunk_recognizer`` chooses).
"""

from __future__ import annotations

import logging
import os
from abc import abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from medialens.errors import ConfigurationError
from medialens.media.audio.samples import SAMPLE_RATE, FloatAudio
from medialens.media.audio.vad import detect_speech
from medialens.media.audio.wav import read_wav
from medialens.media.transcript import ChunkTranscript, Segment, Word, plan_fallback, splice
from medialens.ml.base import InferenceModel, cached_model
from medialens.ml.store.manifest import ModelArtifact
from medialens.ml.store.store import ModelStore, store_for
from medialens.settings import Settings, get_settings

log = logging.getLogger(__name__)

# What each device computes in unless told otherwise: float16 is the GPU's native speed; on CPU
# int8 gives the same words as float32 on our test speech at about half the time (bench_speech).
DEFAULT_COMPUTE_TYPES = {"cuda": "float16", "cpu": "int8"}


def most_likely(probabilities: Mapping[str, float]) -> tuple[str, float]:
    """The language with the highest probability, and that probability."""
    language = max(probabilities, key=probabilities.__getitem__)
    return language, probabilities[language]


class SpeechRecognizer(InferenceModel):
    """16 kHz mono float32 audio in, a :class:`ChunkTranscript` with word timestamps out."""

    @property
    @abstractmethod
    def multilingual(self) -> bool:
        """Whether the model can transcribe (and identify) languages other than English."""

    @abstractmethod
    def transcribe(
        self, audio: FloatAudio, offset_s: float = 0.0, language: str | None = None, *, quick: bool = False
    ) -> ChunkTranscript:
        """Transcribes ``audio``; every time in the result has ``offset_s`` added (the chunk's
        start in the recording). ``language`` (e.g. "en") skips detection. ``quick``: greedy
        decoding of one short utterance (a spoken question), where latency matters more than the
        last points of accuracy a beam search buys on long recordings."""

    @abstractmethod
    def language_probabilities(self, audio: FloatAudio) -> dict[str, float]:
        """Every language's probability of being the one spoken in (the first 30 s of speech in)
        ``audio``; an English-only model answers ``{"en": 1.0}``."""

    def detect_language(self, audio: FloatAudio) -> tuple[str, float]:
        """The language spoken in (the first 30 s of speech in) ``audio``, and its probability."""
        return most_likely(self.language_probabilities(audio))

    def transcribe_wav(self, path: Path, offset_s: float = 0.0, language: str | None = None) -> ChunkTranscript:
        """Transcribes a 16 kHz WAV chunk artifact (:func:`medialens.media.audio.chunking.write_chunks`)."""
        return self.transcribe(read_wav(path), offset_s=offset_s, language=language)


def available_cpus() -> int:
    """CPUs this process may run on (a container's or taskset's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


# Transcriptions at once on CPU by default (one thread each): more replicas buy little on a
# small machine and cost ~130 MB each.
MAX_AUTO_SPEECH_WORKERS = 4


def speech_workers(settings: Settings) -> int:
    """Transcriptions one loaded model runs at once: ``speech_num_workers``, or by default one
    per CPU core (at most four, one thread each) on CPU and one on CUDA, which batching fills.
    Measured on 2 cores (eight 25-s recordings, whisper-base int8): two side by side with one
    thread each 22.4x real time and 17.8 CPU s, one at a time with two threads 10.9x and 25.8 CPU
    s, the same words; CTranslate2's second thread does little for one short window."""
    if settings.speech_num_workers:
        return settings.speech_num_workers
    if select_device(settings.speech_device) == "cuda":
        return 1
    return max(1, min(available_cpus(), MAX_AUTO_SPEECH_WORKERS))


# Windows of speech decoded at once by default: what fills a GPU, and one on CPU (see settings.py).
DEFAULT_SPEECH_BATCH = {"cuda": 8, "cpu": 1}


def speech_batch_size(settings: Settings) -> int:
    """``speech_batch_size``, or by default 8 on CUDA and 1 on CPU."""
    if settings.speech_batch_size is not None:
        return settings.speech_batch_size
    return DEFAULT_SPEECH_BATCH[select_device(settings.speech_device)]


def select_device(device: str = "auto") -> str:
    """``cuda`` when asked, or on auto when CTranslate2 sees a CUDA device; else ``cpu``."""
    import ctranslate2  # type: ignore[import-untyped]

    if device not in {"auto", "cpu", "cuda"}:
        raise ConfigurationError(f"speech device must be auto, cpu or cuda, not {device!r}")
    if device == "auto":
        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if device == "cuda" and ctranslate2.get_cuda_device_count() == 0:
        raise ConfigurationError("speech device cuda was configured but CTranslate2 sees no CUDA device")
    return device


def select_compute_type(device: str, requested: str | None = None) -> str:
    """The compute type for ``device``: ``requested`` if the device supports it, else the
    device's default (float16 on CUDA, int8 on CPU), else float32 (always supported)."""
    import ctranslate2

    supported = set(ctranslate2.get_supported_compute_types(device))
    if requested is not None:
        if requested not in supported:
            choices = ", ".join(sorted(supported))
            raise ConfigurationError(
                f"compute type {requested} is not supported on {device} here (supported: {choices})"
            )
        return requested
    preferred = DEFAULT_COMPUTE_TYPES[device]
    if preferred in supported:
        return preferred
    log.warning("%s does not support %s compute here; using float32", device, preferred)
    return "float32"


class FasterWhisperRecognizer(SpeechRecognizer):
    """Whisper in CTranslate2 format, run by faster-whisper.

    Decoding: beam search (``beam_size``), word timestamps always on, faster-whisper's own
    Silero VAD filter inside the chunk (hallucinations in long silences cost more than the ~1%
    it takes), and no conditioning on the previous window's text: that conditioning is what
    sends Whisper into repetition loops, and without it a chunk's words do not depend on where
    the chunk began, so chunked and one-pass transcripts agree.

    ``batch_size`` > 0 (8 here; what the settings choose: 8 on CUDA, 1 on CPU, see
    ``speech_batch_size``) decodes with faster-whisper's BatchedInferencePipeline: the chunk's
    speech, cut by its VAD into pieces of up to 30 s at pauses, decoded in batches; on a GPU
    batching is what fills it. On 2 CPU cores (scripts/bench_speech.py) it took the same
    CPU time per media minute as one window at a time but kept both cores busy (an hour of
    tiny.en: 198 s against 252 s), in ~140 MB more memory, with WER within two points either
    way (hour, tiny.en: 12.5% vs 11.9%; 3 min, base: 6.8% vs 10%). Its segments are longer (up
    to 30 s). 0: one 30 s window after another (``WhisperModel.transcribe``).

    Thread-safe: CTranslate2 models are; ``num_workers`` > 1 lets that many calls run at once.
    """

    def __init__(
        self,
        store: ModelStore,
        name: str,
        version: str | None = None,
        *,
        device: str = "auto",
        compute_type: str | None = None,
        cpu_threads: int = 0,
        num_workers: int = 1,
        beam_size: int = 5,
        batch_size: int = 8,
        vad_filter: bool = True,
        trim_windows: bool = True,
    ) -> None:
        spec = store.spec(name)
        if spec.format != "ctranslate2":
            raise ConfigurationError(f"model {name} is a {spec.format} model, not a CTranslate2 Whisper model")
        self.device = select_device(device)
        self.compute_type = select_compute_type(self.device, compute_type)
        # The version records the compute type (what computed the words); the store holds the
        # weights as shipped (spec.quantizations[0]).
        super().__init__(
            name, self.compute_type, version or spec.version, store=store, stored_quantization=spec.quantizations[0]
        )
        if num_workers < 1 or beam_size < 1 or batch_size < 0 or cpu_threads < 0:
            raise ValueError("num_workers and beam_size must be >= 1, batch_size and cpu_threads >= 0")
        # Threads per worker: all available CPUs shared among the workers unless set.
        self.cpu_threads = cpu_threads or max(1, available_cpus() // num_workers)
        self.num_workers = num_workers
        self.beam_size = beam_size
        self.batch_size = batch_size
        self.vad_filter = vad_filter
        self.trim_windows = trim_windows
        # Trimmed windows decoded again from their full 30 s because they looked like a loop.
        self.windows_redecoded = 0
        self._model: Any = None

    @property
    def multilingual(self) -> bool:
        self.load()
        return bool(self._model.model.is_multilingual)

    def _load_from(self, artifact: ModelArtifact) -> None:
        from faster_whisper import WhisperModel  # type: ignore[import-untyped]

        log.info("loading %s on %s (%s, %d threads)", self.version, self.device, self.compute_type, self.cpu_threads)
        self._model = WhisperModel(
            str(artifact.path),
            device=self.device,
            compute_type=self.compute_type,
            cpu_threads=self.cpu_threads,
            num_workers=self.num_workers,
            local_files_only=True,
        )

    def _check_language(self, language: str | None) -> None:
        if language is not None and language != "en" and not self.multilingual:
            raise ConfigurationError(
                f"{self.name} is English-only and cannot transcribe {language!r}; configure a multilingual "
                "speech model (MEDIALENS_SPEECH_MODEL=whisper-base)"
            )

    def language_probabilities(self, audio: FloatAudio) -> dict[str, float]:
        self.load()
        if not self.multilingual:
            return {"en": 1.0}
        samples = np.ascontiguousarray(audio, dtype=np.float32)
        _language, _probability, every = self._model.detect_language(audio=samples, vad_filter=self.vad_filter)
        return {str(language): float(probability) for language, probability in every}

    def transcribe(
        self, audio: FloatAudio, offset_s: float = 0.0, language: str | None = None, *, quick: bool = False
    ) -> ChunkTranscript:
        self.load()
        self._check_language(language)
        samples = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
        duration = len(samples) / SAMPLE_RATE
        if not len(samples):
            return ChunkTranscript(offset_s=offset_s, duration_s=0.0, language=language, model_version=self.version)
        options: dict[str, Any] = {
            "language": language,
            "beam_size": 1 if quick else self.beam_size,
            "word_timestamps": True,
            "vad_filter": self.vad_filter,
            "condition_on_previous_text": False,
        }
        if self.batch_size and not quick:  # one short utterance: nothing to batch
            from faster_whisper import BatchedInferencePipeline

            # A pipeline per call: it keeps per-transcription state, the model it wraps does not.
            # Trimmed only where it was measured to cost no words: English, or a language the
            # first window will tell (_OneEncoderPass goes back to 30 s for any other).
            trim = self.trim_windows and (language is None or language in _TRIMMED_LANGUAGES or not self.multilingual)
            trimmed = _TrimmedWindows(self._model) if trim else None
            model = trimmed or self._model
            model = model if language else _OneEncoderPass(model, self.batch_size)
            segments, info = BatchedInferencePipeline(model).transcribe(samples, batch_size=self.batch_size, **options)
        else:
            trimmed = None
            segments, info = self._model.transcribe(samples, **options)
        converted = [_segment(segment, offset_s) for segment in segments]  # decoding happens here
        self.windows_redecoded += trimmed.redecoded if trimmed else 0
        words = sum(len(segment.words) for segment in converted)
        return ChunkTranscript(
            offset_s=offset_s,
            duration_s=duration,
            # With no speech there was nothing to identify: do not report a guess.
            language=str(info.language) if words or language else None,
            language_probability=float(info.language_probability) if words or language else None,
            segments=converted,
            model_version=self.version,
        )


# A window is encoded over its speech and this much after it (frames of 10 ms), at least
# _TRIM_MIN_FRAMES; see _TrimmedWindows.
_TRIM_MARGIN_FRAMES = 300
_TRIM_MIN_FRAMES = 1500
# The languages whose windows are trimmed (see _TrimmedWindows): English was measured better
# trimmed; the others within a few words either way on 11 clips, but single clips lost a word
# (German "Roboter" read "Hoboter" at 15 s and at 20 s), so they keep Whisper's 30 s.
_TRIMMED_LANGUAGES = frozenset({"en"})
# A language read from a trimmed window with less than this probability is read again, and the
# speech decoded, from all 30 s. Real speech (the shared real-media set, 13 recordings) read
# 0.93-1.0 from trimmed and full windows alike; espeak-ng's voices in other languages
# 0.15-0.98, where the two readings can differ.
_SURE_LANGUAGE = 0.8
# Whisper's own test for a decoding stuck in a loop (faster-whisper's compression_ratio_threshold).
_LOOP_COMPRESSION_RATIO = 2.4


class _TrimmedWindows:
    """The WhisperModel a batched transcription sees when windows are trimmed: a window shorter
    than 30 s is encoded over its speech plus 3 s (at least 15 s), not over the zeros that pad
    it to 30 s. CTranslate2's encoder takes any length up to 30 s and its cost grows faster
    than the length: whisper-base int8 on one core encodes 30 s in 0.57 s, 20 s in 0.18 s, 10 s
    in 0.06 s, and the decoder attends to fewer frames. An 11-s English recording took 0.48 s
    instead of 0.74 s.

    Whisper was trained on 30-s windows only. On espeak-ng clips of 3-20 s
    (scripts/bench_speech.py --trim) English came out as good or better (WER 12.4 % -> 11.9 %),
    the other languages within a few words either way but with single words lost; so only
    English is trimmed (_TRIMMED_LANGUAGES): speech told another language, or whose first
    window reads as another or unsure (_OneEncoderPass), is encoded over all 30 s. And a
    decoding that had already gone wrong fell into a repetition loop more readily trimmed, so a
    window whose words look like a loop (Whisper's own test: text that compresses more than 2.4
    times, or a decoding that ran to the token limit) is decoded again from its full 30-s
    encoding, and keeps what that gives.

    Everything else is the model's. Windows are found from the padding: faster-whisper pads each
    window's features to 30 s with zeros; a frame of audio is all zero only if each of its 80
    normalised mel bins lands exactly on 0.0, and a window cut a frame short keeps the margin."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.model = _LoopGuard(model, self)
        self._padded: np.ndarray | None = None
        self.redecoded = 0
        self.trimming = True  # off once the speech turns out not to be in a trimmed language

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def encode(self, features: np.ndarray) -> Any:
        self._padded = features
        return self._model.encode(trimmed(features) if self.trimming else features)

    def encode_full(self, index: int) -> Any:
        """The 30-s encoding of window ``index`` of the batch last encoded."""
        if self._padded is None:
            raise RuntimeError("no batch was encoded")
        return self._model.encode(self._padded[index : index + 1])


def trimmed(features: np.ndarray) -> np.ndarray:
    """A batch of padded windows' features cut after the longest window's speech plus the margin
    (whole seconds, at least the minimum); unchanged when the speech fills the window."""
    frames = features.shape[-1]
    spoken = np.flatnonzero(np.any(features != 0, axis=tuple(range(features.ndim - 1))))
    speech = int(spoken[-1]) + 1 if len(spoken) else 0
    keep = max(_TRIM_MIN_FRAMES, -(-(speech + _TRIM_MARGIN_FRAMES) // 100) * 100)
    return features if keep >= frames else np.ascontiguousarray(features[..., :keep])


class _LoopGuard:
    """The CTranslate2 model behind a _TrimmedWindows: its decodings that look like a loop are
    done again from the window's full encoding."""

    def __init__(self, model: Any, windows: _TrimmedWindows) -> None:
        self._ct2 = model.model
        self._windows = windows
        self._tokenizer = model.hf_tokenizer
        self._end_of_text = int(self._tokenizer.token_to_id("<|endoftext|>"))  # ids from here on are not text
        self._max_length = int(model.max_length)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ct2, name)

    def generate(self, encoder_output: Any, prompts: list[list[int]], **options: Any) -> list[Any]:
        results = list(self._ct2.generate(encoder_output, prompts, **options))
        if not self._windows.trimming:
            return results  # encoded over all 30 s already
        for index, result in enumerate(results):
            if self._looks_like_a_loop(result.sequences_ids[0], len(prompts[index]), options):
                full = self._windows.encode_full(index)
                results[index] = self._ct2.generate(full, [prompts[index]], **options)[0]
                self._windows.redecoded += 1
                log.info("window %d of a trimmed batch looked like a loop: decoded again at 30 s", index)
        return results

    def _looks_like_a_loop(self, tokens: list[int], prompt_length: int, options: Mapping[str, Any]) -> bool:
        from faster_whisper.transcribe import get_compression_ratio  # type: ignore[import-untyped]

        limit = int(options.get("max_length", self._max_length)) - prompt_length
        if len(tokens) >= limit - 1:
            return True
        text = self._tokenizer.decode([token for token in tokens if token < self._end_of_text])
        return bool(text.strip()) and get_compression_ratio(text) > _LOOP_COMPRESSION_RATIO


class _RecordedFeatures:
    """A feature extractor that keeps what it computed (the pipeline's per-chunk features)."""

    def __init__(self, extractor: Any) -> None:
        self._extractor = extractor
        self.computed: list[np.ndarray] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._extractor, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        features = self._extractor(*args, **kwargs)
        self.computed.append(features)
        return features


class _OneEncoderPass:
    """The WhisperModel one batched transcription of unknown language sees. faster-whisper's
    BatchedInferencePipeline encodes the first 30 s of speech to identify the language, then
    encodes the same speech again in the first batch it decodes: on one core that second pass
    was a third of a 20-s clip's time (whisper-base int8: 1.99 s with the language unknown,
    1.31 s told it). Here the language is read from the first batch's own encoder output (its
    first window, as faster-whisper reads the first 30 s), and that output is handed back when
    the pipeline encodes the batch. Everything else is the model's; if the pipeline ever asks
    for something else, the cache misses and the model encodes as before."""

    def __init__(self, model: Any, batch_size: int) -> None:
        self._model = model
        self._batch_size = batch_size
        self.feature_extractor = _RecordedFeatures(model.feature_extractor)
        self._first_batch: np.ndarray | None = None
        self._first_encoded: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def detect_language(self, *args: Any, **kwargs: Any) -> tuple[str, float, list[tuple[str, float]]]:
        computed = self.feature_extractor.computed
        if args or kwargs.get("audio") is not None or not computed:
            return self._model.detect_language(*args, **kwargs)  # type: ignore[no-any-return]
        from faster_whisper.audio import pad_or_trim  # type: ignore[import-untyped]

        # The batch exactly as the pipeline will build it: each chunk's features less their last
        # frame, padded to 30 s, the first batch_size of them.
        batch = np.stack([pad_or_trim(features[..., :-1]) for features in computed[: self._batch_size]])
        encoded = self._model.encode(batch)
        every = self._languages(encoded)
        language, probability = every[0]
        if isinstance(self._model, _TrimmedWindows) and (
            language not in _TRIMMED_LANGUAGES or probability < _SURE_LANGUAGE
        ):
            # Not surely a trimmed language: read the language, and decode the speech, as Whisper
            # was trained to, from all 30 s.
            self._model.trimming = False
            encoded = self._model.encode(batch)
            every = self._languages(encoded)
        self._first_batch, self._first_encoded = batch, encoded
        return every[0][0], every[0][1], every

    def _languages(self, encoded: Any) -> list[tuple[str, float]]:
        """The first window's languages, most probable first."""
        first_window = self._model.model.detect_language(encoded)[0]
        return [(str(token)[2:-2], float(probability)) for token, probability in first_window]

    def encode(self, features: np.ndarray) -> Any:
        batch, encoded = self._first_batch, self._first_encoded
        if batch is not None and features.shape == batch.shape and np.array_equal(features, batch):
            self._first_batch = self._first_encoded = None  # used once: free it
            return encoded
        return self._model.encode(features)


def _probability(value: Any) -> float:
    return min(1.0, max(0.0, float(value)))


def _segment(segment: Any, offset_s: float) -> Segment:
    """faster-whisper's Segment (numpy floats, relative times) as ours (absolute seconds)."""
    words = [
        Word(
            start=round(max(0.0, float(word.start) + offset_s), 3),
            end=round(max(0.0, float(word.end) + offset_s), 3),
            text=str(word.word),
            probability=round(_probability(word.probability), 4),
        )
        for word in segment.words or []
    ]
    return Segment(
        start=round(max(0.0, float(segment.start) + offset_s), 3),
        end=round(max(0.0, float(segment.end) + offset_s), 3),
        text=str(segment.text).strip(),
        avg_logprob=round(float(segment.avg_logprob), 4),
        no_speech_prob=round(_probability(segment.no_speech_prob), 4),
        compression_ratio=round(float(segment.compression_ratio), 3),
        temperature=None if segment.temperature is None else float(segment.temperature),
        words=words,
    )


def get_speech_recognizer(settings: Settings | None = None, model: str | None = None) -> SpeechRecognizer:
    """The process-wide recognizer for ``model`` (default: the configured speech model) and the
    configured runtime options."""
    settings = settings or get_settings()
    name = model or settings.speech_model
    key = (
        name,
        settings.speech_device,
        settings.speech_compute_type,
        settings.speech_cpu_threads,
        settings.speech_num_workers,
        settings.speech_beam_size,
        settings.speech_batch_size,
        settings.speech_trim_windows,
        settings.models_dir.resolve(),
        settings.model_store_uri,
    )
    return cached_model(
        "speech_recognizer",
        key,
        lambda: FasterWhisperRecognizer(
            store_for(settings),
            name,
            device=settings.speech_device,
            compute_type=settings.speech_compute_type,
            cpu_threads=settings.speech_cpu_threads,
            num_workers=speech_workers(settings),
            beam_size=settings.speech_beam_size,
            batch_size=speech_batch_size(settings),
            trim_windows=settings.speech_trim_windows,
        ),
    )


# --- the cascade: English to a smaller model first --------------------------------------------------

# The fast model's language: whisper-tiny-en and its kind are English-only.
CASCADE_LANGUAGE = "en"
# Seconds of audio on each side of an unsure stretch that the full model also hears: context for
# its first and last words, and the words both models hear, where the splice joins them.
FALLBACK_MARGIN_S = 1.0
# Spans covering this share of a chunk or more: the whole chunk is re-run instead (as costly,
# and every word heard in context).
WHOLE_CHUNK_SHARE = 0.6


class ChunkRecognizer(Protocol):
    """What TranscribeChunk calls: a recognizer, or a cascade of two."""

    @property
    def version(self) -> str: ...

    def transcribe(self, audio: FloatAudio, offset_s: float = 0.0, language: str | None = None) -> ChunkTranscript: ...

    def transcribe_wav(self, path: Path, offset_s: float = 0.0, language: str | None = None) -> ChunkTranscript: ...


class SpeechCascade:
    """A fast model's transcript, with the segments it was unsure of (and the speech it wrote
    nothing for) re-transcribed by the full model (:func:`medialens.media.transcript.plan_fallback`
    chooses them, ``splice`` puts the full model's words in their place). ``version`` names both
    models: it keys the chunk artifacts. Each transcript's segments name the model that made them
    and its ``fallback`` what was re-run.
    """

    def __init__(
        self,
        fast: SpeechRecognizer,
        full: SpeechRecognizer,
        min_word_probability: float,
        *,
        margin_s: float = FALLBACK_MARGIN_S,
        whole_chunk_share: float = WHOLE_CHUNK_SHARE,
    ) -> None:
        if not 0.0 <= min_word_probability <= 1.0:
            raise ValueError(f"min_word_probability must be in [0, 1], not {min_word_probability}")
        self.fast = fast
        self.full = full
        self.min_word_probability = min_word_probability
        self.margin_s = margin_s
        self.whole_chunk_share = whole_chunk_share

    @property
    def version(self) -> str:
        return f"{self.fast.version},{self.full.version}"

    def transcribe(self, audio: FloatAudio, offset_s: float = 0.0, language: str | None = None) -> ChunkTranscript:
        """``audio`` in English (the fast model's language) through the cascade; in any other
        language, or undecided (None: the language is identified), by the full model alone."""
        if language != CASCADE_LANGUAGE:
            return self.full.transcribe(audio, offset_s=offset_s, language=language)
        samples = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
        first = self.fast.transcribe(samples, offset_s=offset_s, language=CASCADE_LANGUAGE)
        # Where there is speech, to find what the fast model skipped (Silero VAD: ~1.5 CPU-s per
        # 10 min of audio, a few % of tiny.en's time; PrepareAudio's regions do not reach this step).
        speech = [(offset_s + r.start, offset_s + r.end) for r in detect_speech([samples])] if len(samples) else []
        spans = plan_fallback(
            first,
            self.min_word_probability,
            margin_s=self.margin_s,
            whole_chunk_share=self.whole_chunk_share,
            speech=speech,
        )
        reruns = []
        for span in spans:
            low = max(0, round((span.window_start - offset_s) * SAMPLE_RATE))
            high = min(len(samples), round((span.window_end - offset_s) * SAMPLE_RATE))
            piece = samples[low:high]
            reruns.append(self.full.transcribe(piece, offset_s=offset_s + low / SAMPLE_RATE, language=CASCADE_LANGUAGE))
        return splice(
            first,
            spans,
            reruns,
            full_model=self.full.version,
            min_word_probability=self.min_word_probability,
            margin_s=self.margin_s,
        )

    def transcribe_wav(self, path: Path, offset_s: float = 0.0, language: str | None = None) -> ChunkTranscript:
        return self.transcribe(read_wav(path), offset_s=offset_s, language=language)


def cascade_configured(settings: Settings) -> bool:
    """Whether English goes through a cascade: a fast model other than the full one is set."""
    fast = settings.speech_fast_model
    return bool(fast) and fast != settings.speech_model


def get_speech_cascade(settings: Settings | None = None) -> SpeechCascade | None:
    """The configured cascade (``speech_fast_model`` then ``speech_model``); None when there is no
    fast model or it is the full model itself."""
    settings = settings or get_settings()
    fast = settings.speech_fast_model
    if not fast or not cascade_configured(settings):
        return None
    return SpeechCascade(
        get_speech_recognizer(settings, fast),
        get_speech_recognizer(settings),
        settings.speech_fast_min_word_probability,
    )


def chunk_recognizer(settings: Settings, language: str | None) -> ChunkRecognizer:
    """What transcribes a chunk in ``language``: the cascade for English when one is configured;
    the full model for any other language and for undecided chunks (they identify their own)."""
    cascade = get_speech_cascade(settings) if language == CASCADE_LANGUAGE else None
    return cascade or get_speech_recognizer(settings)
