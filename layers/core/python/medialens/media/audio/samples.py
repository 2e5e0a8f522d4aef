"""What every module of :mod:`medialens.media.audio` shares: the audio they pass each other
(16 kHz mono float32, the input Whisper and Silero VAD expect) and the error for input that
cannot be used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from medialens.errors import InvalidMediaError

SAMPLE_RATE = 16_000
FloatAudio = npt.NDArray[np.float32]


def invalid(path: Path, reason: str) -> InvalidMediaError:
    return InvalidMediaError(f"{path.name}: {reason}")
