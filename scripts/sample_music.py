"""Music and singing with known placement, synthesised: the sound-class tests and the sample media
use them where espeak-ng gives speech (no recording of music ships in a package).

    music(seconds)     a I-vi-IV-V progression, an eighth-note melody, kick, snare and hi-hat
    singing(seconds)   a legato melody sung on changing vowels, with vibrato

Both return float32 mono at SAMPLE_RATE (16 kHz, what the detector reads), peak 0.5 / 0.4.
What the sound-class detector makes of them (measured): the loop is music at 0.99-1.0, the sung
melody singing at 0.95-0.97; one vowel throughout is heard partly as music, a pure sine barely at all.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000
Audio = npt.NDArray[np.float32]


def note_hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def music(seconds: float, seed: int = 0) -> Audio:
    """A I-vi-IV-V progression of harmonic tones, an eighth-note melody, and kick, snare and
    hi-hat at 120 bpm."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    out = np.zeros(n)
    beat = 0.5

    def tone(start: float, length: float, hz: float, gain: float, decay: float, harmonics: int) -> None:
        first, last = int(start * SAMPLE_RATE), min(n, int((start + length) * SAMPLE_RATE))
        into = t[first:last] - start
        envelope = np.minimum(1, into * 200) * np.exp(-into * decay)
        for h in range(1, harmonics + 1):
            out[first:last] += gain / h * np.sin(2 * np.pi * hz * h * into) * envelope

    chords = [[60, 64, 67], [57, 60, 64], [53, 57, 60], [55, 59, 62]]
    for number, start in enumerate(np.arange(0, seconds, 4 * beat)):
        for midi in chords[number % 4]:
            tone(start, 4 * beat, note_hz(midi), 0.06, 0.4, 5)
    scale = [72, 74, 76, 77, 79, 81, 83, 84]
    for start in np.arange(0, seconds, beat / 2):
        tone(start, beat / 2, note_hz(scale[rng.integers(0, 8)]), 0.08, 6, 7)
    for number, start in enumerate(np.arange(0, seconds, beat)):
        first = int(start * SAMPLE_RATE)
        length = min(n - first, int(0.25 * SAMPLE_RATE))
        into = np.arange(length) / SAMPLE_RATE
        out[first : first + length] += (
            0.5 * np.sin(2 * np.pi * (50 + 80 * np.exp(-into * 30)) * into) * np.exp(-into * 12)
        )
        if number % 2:
            out[first : first + length] += 0.2 * rng.standard_normal(length) * np.exp(-into * 20)
        hat = int((start + beat / 2) * SAMPLE_RATE)
        length = max(0, min(n - hat, int(0.05 * SAMPLE_RATE)))
        out[hat : hat + length] += 0.05 * rng.standard_normal(length) * np.exp(-np.arange(length) / SAMPLE_RATE * 80)
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


# First three formants (Hz, bandwidth, gain) of sung vowels.
FORMANTS = {
    "a": ((730, 90, 1.0), (1090, 110, 0.5), (2440, 170, 0.25)),
    "e": ((530, 80, 1.0), (1840, 120, 0.5), (2480, 170, 0.3)),
    "i": ((270, 60, 1.0), (2290, 120, 0.4), (3010, 200, 0.3)),
    "o": ((570, 80, 1.0), (840, 100, 0.45), (2410, 170, 0.15)),
}


def singing(seconds: float, vowels: str = "aeio", note_s: float = 0.5) -> Audio:
    """A legato melody sung on changing vowels, with vibrato setting in after each onset. (One
    vowel throughout is heard partly as music; the changing vowels are what make it a voice.)"""
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    note = (t // note_s).astype(int)
    into = t % note_s
    tune = np.array([0, 2, 4, 5, 7, 5, 4, 2, 0, 4, 7, 12, 7, 4])
    vibrato = 1 + 0.025 * np.clip((into - 0.15) / 0.15, 0, 1) * np.sin(2 * np.pi * 5.5 * t)
    f0 = 440.0 * 2 ** ((57 + tune[note % len(tune)] - 69) / 12) * vibrato
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    vowel = note % len(vowels)
    out = np.zeros(n)
    for h in range(1, 40):
        amplitude = np.full(n, 0.02)
        for number, name in enumerate(vowels):
            sung = vowel == number
            amplitude[sung] += sum(g * np.exp(-(((f0[sung] * h - f) / b) ** 2) / 2) for f, b, g in FORMANTS[name])
        out += np.where(f0 * h < 7800, amplitude / np.sqrt(h), 0) * np.sin(h * phase)
    out *= np.clip(into / 0.05, 0, 1) * np.clip((note_s - into) / 0.05, 0, 1)
    return (0.4 * out / np.abs(out).max()).astype(np.float32)
