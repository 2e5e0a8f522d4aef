"""Decoding real files to 16 kHz, errors for bad ones, voice activity and chunk preparation.

The media are made here with espeak-ng and FFmpeg (scripts/sample_audio.py), so the sentences'
times are known.
"""

from __future__ import annotations

import subprocess
import tracemalloc
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from medialens.errors import InvalidMediaError
from medialens.media.audio.chunking import ChunkingParams
from medialens.media.audio.decode import AudioReader, iter_audio, load_audio, probe_audio
from medialens.media.audio.prepare import prepare_speech_audio
from medialens.media.audio.samples import SAMPLE_RATE
from medialens.media.audio.vad import StreamingVad, VadParams, detect_speech
from medialens.media.audio.wav import read_wav

pytestmark = pytest.mark.integration

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="session")
def corpus(audio_samples: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("audio-corpus")
    audio_samples.write_audio(folder)
    return folder


def _recording(audio_samples: ModuleType, path: str) -> object:
    return next(r for r in audio_samples.RECORDINGS if r.path == path)


@pytest.mark.parametrize(
    ("path", "codec", "rate", "channels"),
    [
        ("audio/standup-meeting.wav", "pcm_s16le", 22_050, 1),
        ("audio/product-briefing.mp3", "mp3float", 44_100, 2),
        ("audio/safety-announcement.flac", "flac", 48_000, 1),
        ("audio/customer-call.m4a", "aac", 44_100, 1),
        ("audio/voice-memo.mp3", "flac", 22_050, 1),  # mislabelled: FLAC under an .mp3 name
        ("audio/podcast-episode.mp3", "mp3float", 44_100, 2),
    ],
)
def test_decodes_to_16khz_mono_with_the_right_duration(
    audio_samples: ModuleType, corpus: Path, path: str, codec: str, rate: int, channels: int
) -> None:
    reader = AudioReader(corpus / path, block_s=5.0)
    blocks = list(reader)
    assert all(block.dtype == np.float32 and block.ndim == 1 for block in blocks)
    assert all(len(block) == 5 * SAMPLE_RATE for block in blocks[:-1]) and 0 < len(blocks[-1]) <= 5 * SAMPLE_RATE
    info = reader.info
    expected = audio_samples.duration(_recording(audio_samples, path))
    assert abs(info.duration_s - expected) <= 0.05, (info.duration_s, expected)
    assert info.samples == sum(len(b) for b in blocks)
    assert (info.codec, info.source_sample_rate, info.source_channels) == (codec, rate, channels)
    assert info.bad_packets == 0
    audio = np.concatenate(blocks)
    assert 0.05 < float(np.abs(audio).max()) <= 1.0  # speech, at a sane level, downmixed not summed
    probed = probe_audio(corpus / path)
    assert probed is not None and probed.codec == codec


def test_load_audio_is_an_explicit_opt_in(corpus: Path) -> None:
    podcast = corpus / "audio/podcast-episode.mp3"
    assert np.array_equal(load_audio(podcast), np.concatenate(list(iter_audio(podcast, block_s=7.0))))
    with pytest.raises(ValueError, match="stream it with iter_audio"):
        load_audio(podcast, max_duration_s=60)


def test_a_truncated_mp3_fails_with_an_actionable_reason(corpus: Path) -> None:
    with pytest.raises(InvalidMediaError) as caught:
        list(iter_audio(corpus / "bad/truncated-interview.mp3"))
    reason = caught.value.reason
    assert "truncated" in reason and "re-upload" in reason and "declares 18." in reason
    assert caught.value.error_name == "MediaLens.InvalidMedia"


@pytest.fixture(scope="session")
def bad_files(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bad-audio")
    (folder / "notes.mp3").write_text("These are meeting notes, not audio.\n", encoding="utf-8")
    (folder / "empty.wav").write_bytes(b"")
    wav = (corpus / "audio/standup-meeting.wav").read_bytes()
    (folder / "cut.wav").write_bytes(wav[: len(wav) // 3])  # the header still declares it all
    m4a = (corpus / "audio/customer-call.m4a").read_bytes()
    (folder / "cut.m4a").write_bytes(m4a[: len(m4a) // 2])  # the index (moov) is at the end
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=160x120:r=10:d=2",
         "-c:v", "mpeg4", str(folder / "silent-video.mp4")],
        check=True,
    )  # fmt: skip
    return folder


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("notes.mp3", "not a readable audio or video file"),
        ("empty.wav", "empty file"),
        ("cut.wav", "looks truncated: its header declares 25.7 s of audio but only 8.6 s"),
        ("cut.m4a", "not a readable audio or video file"),
        ("silent-video.mp4", "has no audio stream (streams: video)"),
        ("missing.flac", "file not found"),
    ],
)
def test_bad_inputs_fail_with_reasons(bad_files: Path, name: str, reason: str) -> None:
    with pytest.raises(InvalidMediaError) as caught:
        list(iter_audio(bad_files / name))
    assert reason in caught.value.reason and caught.value.reason.startswith(f"{name}: ")


def test_probe_tells_a_video_without_audio_from_broken_media(bad_files: Path) -> None:
    assert probe_audio(bad_files / "silent-video.mp4") is None
    with pytest.raises(InvalidMediaError):
        probe_audio(bad_files / "notes.mp3")


def test_a_few_damaged_packets_are_skipped(corpus: Path, tmp_path: Path) -> None:
    data = bytearray((corpus / "audio/podcast-episode.mp3").read_bytes())
    middle = len(data) // 2
    data[middle : middle + 600] = bytes(range(256)) * 2 + bytes(88)  # garbage over a few frames
    damaged = tmp_path / "damaged.mp3"
    damaged.write_bytes(bytes(data))
    reader = AudioReader(damaged)
    samples = sum(len(block) for block in reader)
    declared = reader.info.declared_duration_s
    assert reader.info.bad_packets >= 1  # counted, skipped, and the rest decoded
    assert declared is not None and abs(samples / SAMPLE_RATE - declared) < 1.0


def test_vad_finds_each_known_sentence_and_nothing_in_the_silences(audio_samples: ModuleType, corpus: Path) -> None:
    for recording in (audio_samples.STANDUP, audio_samples.SAFETY, audio_samples.CALL, audio_samples.BRIEFING):
        regions = detect_speech(iter_audio(corpus / recording.path))
        sentences = audio_samples.script(recording)
        assert len(regions) == len(sentences), recording.path  # pauses of ~1 s separate them
        for region, sentence in zip(regions, sentences, strict=True):
            # Regions are padded by 0.2 s; allow one 32 ms window of detection latency more.
            assert region.start <= sentence.start + 0.1 and region.end >= sentence.end - 0.1
            assert region.start >= sentence.start - 0.35 and region.end <= sentence.end + 0.35


def test_streaming_vad_matches_faster_whispers_whole_file_vad(corpus: Path) -> None:
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    audio = load_audio(corpus / "audio/podcast-episode.mp3")
    params = VadParams()
    options = VadOptions(
        threshold=params.threshold,
        min_speech_duration_ms=round(params.min_speech_s * 1000),
        min_silence_duration_ms=round(params.min_silence_s * 1000),
        speech_pad_ms=round(params.speech_pad_s * 1000),
    )
    theirs = [(t["start"] / SAMPLE_RATE, t["end"] / SAMPLE_RATE) for t in get_speech_timestamps(audio, options)]
    vad = StreamingVad(params)
    for start in range(0, len(audio), 12_345):  # blocks unrelated to the 512-sample windows
        vad.feed(audio[start : start + 12_345])
    ours = [(r.start, r.end) for r in vad.finish()]
    assert ours == theirs and len(ours) > 10
    assert len(vad.probabilities) == len(audio) // 512 + 1


def test_prepare_speech_audio_writes_the_track_and_its_chunks(
    audio_samples: ModuleType, corpus: Path, tmp_path: Path
) -> None:
    source = corpus / "audio/podcast-episode.mp3"
    prepared = prepare_speech_audio(source, tmp_path, chunking=ChunkingParams(target_s=40.0))
    assert prepared.audio_file == "audio.wav" and prepared.info.codec == "mp3float"
    assert prepared.vad_model == "silero-vad@6+faster-whisper-1.2.1"
    track = read_wav(tmp_path / "audio.wav")
    assert len(track) == prepared.info.samples
    assert np.abs(track - load_audio(source)).max() <= 1 / 32768 + 1e-6
    assert len(prepared.chunks) == 4
    assert [c.file for c in prepared.chunks] == [f"chunk-{i:04d}.wav" for i in range(4)]
    for chunk in prepared.chunks:
        assert chunk.file is not None and chunk.has_speech
        audio = read_wav(tmp_path / chunk.file)
        first = round(chunk.start * SAMPLE_RATE)
        assert np.array_equal(audio, track[first : first + len(audio)])
        # Cut in pauses between sentences, not in one.
        for sentence in audio_samples.script(audio_samples.PODCAST):
            assert not sentence.start + 0.05 < chunk.keep_end < sentence.end - 0.05
    assert 0.7 * prepared.info.duration_s < prepared.speech_s < prepared.info.duration_s
    again = type(prepared).model_validate_json(prepared.model_dump_json())
    assert again == prepared


def test_prepare_leaves_nothing_behind_for_a_bad_file(corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidMediaError, match="truncated"):
        prepare_speech_audio(corpus / "bad/truncated-interview.mp3", tmp_path)
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_memory_stays_bounded_for_long_audio(audio_samples: ModuleType, tmp_path: Path) -> None:
    """Eight minutes (29 MiB as float32 at 16 kHz) prepared within a fixed budget that does not
    depend on the length: a decoded block, the VAD's 60 s batch, a few seconds of chunk copy
    (~10-13 MiB measured for 2 and 8 minutes alike)."""
    source = tmp_path / "long.mp3"
    audio_samples.synthesise_speech(source, 8.0)
    tracemalloc.start()
    try:
        prepared = prepare_speech_audio(source, tmp_path / "out", chunking=ChunkingParams(target_s=60.0))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    whole = prepared.info.samples * 4
    assert prepared.info.duration_s > 470 and len(prepared.chunks) >= 6
    assert peak < 20 * 2**20 < whole, f"peak {peak / 2**20:.1f} MiB for a {whole / 2**20:.1f} MiB recording"
