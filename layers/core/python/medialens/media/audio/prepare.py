"""The whole preparation of a recording for speech-to-text, in one decoding pass."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from medialens.media.audio.chunking import AudioChunk, ChunkingParams, plan_chunks, write_chunks
from medialens.media.audio.decode import AudioInfo, AudioReader
from medialens.media.audio.vad import SpeechRegion, StreamingVad, VadParams
from medialens.media.audio.wav import WavWriter


class PreparedAudio(BaseModel):
    """What :func:`prepare_speech_audio` wrote (files relative to its folder) and found."""

    info: AudioInfo
    audio_file: str = Field(description="The whole track, 16 kHz mono PCM WAV.")
    speech: list[SpeechRegion]
    chunks: list[AudioChunk]
    vad: VadParams
    vad_model: str = Field(description="The voice-activity model that found the speech (name@version).")
    chunking: ChunkingParams

    @property
    def speech_s(self) -> float:
        return sum(region.duration for region in self.speech)


def prepare_speech_audio(
    source: Path,
    out_dir: Path,
    *,
    chunking: ChunkingParams | None = None,
    vad: VadParams | None = None,
    block_s: float = 30.0,
    audio_file: str = "audio.wav",
) -> PreparedAudio:
    """Decodes ``source`` once into ``out_dir/audio.wav`` while detecting speech, plans chunks
    and writes one WAV per chunk beside it. Memory: a decoded block, the VAD's batch (320 s)
    and one chunk, whatever the file's length; disk: 115 MB per hour for audio.wav plus the
    chunks. Raises :class:`InvalidMediaError` for unusable input (and leaves no audio.wav).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chunking = chunking or ChunkingParams()
    detector = StreamingVad(vad)
    reader = AudioReader(source, block_s=block_s)
    wav_path = out_dir / audio_file
    try:
        with WavWriter(wav_path) as writer:
            for block in reader:
                writer.write(block)
                detector.feed(block)
    except BaseException:
        wav_path.unlink(missing_ok=True)
        raise
    regions = detector.finish()
    chunks = write_chunks(wav_path, plan_chunks(reader.info.duration_s, regions, chunking), out_dir)
    return PreparedAudio(
        info=reader.info,
        audio_file=audio_file,
        speech=regions,
        chunks=chunks,
        vad=detector.params,
        vad_model=detector.version,
        chunking=chunking,
    )
