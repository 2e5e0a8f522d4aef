"""The ``espeak-ng`` program: phonemes for the Piper voice, the fallback voices for every other
language, and the spoken form of a text (what the narration's word error rate compares).

espeak-ng is GPL-3.0, so it runs as a separate process and is never linked into this
Apache-2.0 code. Text always travels on stdin, never as an argument, so a text that starts with a
dash is read, not parsed as an option.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medialens.errors import ConfigurationError
from medialens.media.audio.samples import FloatAudio

ESPEAK = "espeak-ng"
ESPEAK_TIMEOUT_S = 120.0
# espeak-ng reads ``[[...]]`` as phoneme mnemonics and some control sequences after a backslash
# or in angle brackets; a document's text never means those, so they are spoken as spaces.
_ESPEAK_CONTROL = re.compile(r"\[\[|\]\]|[\\<>]")
# ISO 639-1 codes whose espeak-ng voice has another name.
_VOICE_ALIASES = {"en": "en-us", "zh": "cmn", "no": "nb", "fr": "fr-fr", "pt": "pt-br"}
_STRESS = str.maketrans("", "", "ˈˌ")


@dataclass(frozen=True, slots=True)
class EspeakWav:
    samples: FloatAudio
    sample_rate: int


def espeak_executable() -> str:
    path = shutil.which(ESPEAK)
    if path is None:
        raise ConfigurationError(
            f"the {ESPEAK} program is not installed: the voices need it for phonemes "
            "(scripts/install_system_deps.sh installs it)"
        )
    return path


def _clean(text: str) -> str:
    return _ESPEAK_CONTROL.sub(" ", unicodedata.normalize("NFC", text))


def _run(arguments: Sequence[str], text: str) -> bytes:
    try:
        completed = subprocess.run(
            [espeak_executable(), "--stdin", *arguments],
            input=_clean(text).encode("utf-8"),
            capture_output=True,
            timeout=ESPEAK_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise ConfigurationError(f"{ESPEAK} did not answer within {ESPEAK_TIMEOUT_S:.0f} s") from error
    if completed.returncode != 0:
        reason = completed.stderr.decode("utf-8", "replace").strip()
        raise ConfigurationError(f"{ESPEAK} {' '.join(arguments)} failed: {reason}")
    return completed.stdout


@functools.cache
def espeak_voices() -> frozenset[str]:
    """The language codes espeak-ng has voices for (``en-us``, ``sv``, ``cmn``, ...)."""
    listing = subprocess.run(
        [espeak_executable(), "--voices"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    return frozenset(line.split()[1] for line in listing.splitlines()[1:] if len(line.split()) > 1)


def espeak_voice(language: str | None) -> str | None:
    """espeak-ng's voice for a language code (``sv``, ``en``, ``de-DE``, ``zh``), None if it has
    none. A region it lacks falls back to the language."""
    if not language:
        return None
    code = language.strip().lower().replace("_", "-")
    voices = espeak_voices()
    for candidate in (
        code,
        _VOICE_ALIASES.get(code, ""),
        code.split("-")[0],
        _VOICE_ALIASES.get(code.split("-")[0], ""),
    ):
        if candidate and candidate in voices:
            return candidate
    return None


def phonemize(text: str, voice: str) -> list[str]:
    """IPA phonemes of ``text``, one string per clause (espeak-ng splits at punctuation), words
    separated by spaces."""
    output = _run(["-q", "-v", voice, "--ipa"], text).decode("utf-8", "replace")
    return [line.strip() for line in output.splitlines() if line.strip()]


def spoken_words(text: str, voice: str) -> list[str]:
    """What ``text`` sounds like, word by word, without stress marks: "9" and "nine", "12%" and
    "twelve percent" become the same words, in any language espeak-ng speaks. The narration's
    word error rate compares these, so a transcript that writes numbers as digits is not an error."""
    return [word.translate(_STRESS) for clause in phonemize(text, voice) for word in clause.split()]


def espeak_wav(text: str, voice: str, words_per_minute: int = 165) -> EspeakWav:
    """espeak-ng's own synthesis (its formant voices: robotic, ~300x faster than real time)."""
    data = _run(["-v", voice, "-s", str(words_per_minute), "--stdout"], text)
    # -q (quiet) would silence --stdout too, so it is not passed here.
    # Streamed WAV: the header's sizes are placeholders, so read the format and take the rest.
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE" or data[36:40] != b"data":
        raise ConfigurationError(f"{ESPEAK} wrote no WAV audio for voice {voice}")
    sample_rate = int.from_bytes(data[24:28], "little")
    pcm = np.frombuffer(data[44 : 44 + (len(data) - 44) // 2 * 2], dtype="<i2")
    return EspeakWav(samples=(pcm.astype(np.float32) / np.float32(32768.0)), sample_rate=sample_rate)
