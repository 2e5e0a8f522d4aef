"""Sample speech recordings with known sentences at known times, and bad audio inputs.

    python scripts/sample_audio.py --out sample-media
    python scripts/sample_audio.py --synthesise 60 --to hour.mp3     # benchmark input

``write_audio(out_dir)`` writes the files and returns their ``ExpectedFile`` entries;
``audio_queries()`` returns the searches they answer, each with the seconds of the sentence
that answers it (``expect_start``/``expect_end``). ``synthesise_speech(path, minutes)`` makes
long recordings quickly (for the one-hour benchmark) and returns their script.

Speech comes from espeak-ng (a few voices stand in for speakers); sentences are placed on a
22.05 kHz timeline (espeak's rate) with silences of known length between them, trimmed to
where the voice is audible, so a sentence's start and end are known to the sample. The timeline
is written as WAV and encoded with FFmpeg: MP3 (44.1 kHz stereo, exercising resampling and
downmixing), FLAC (48 kHz), M4A (AAC).

Determinism: espeak-ng's output is deterministic, and FFmpeg runs with bitexact flags and no
metadata (no encoder version or creation time), so the same espeak-ng and FFmpeg versions give
the same bytes on every run; other versions may differ in bytes, not in the sentences or times.
"""

from __future__ import annotations

import argparse
import functools
import random
import shutil
import subprocess
import sys
import tempfile
import wave
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_sample_media import ExpectedFile, ExpectedQuery  # a sibling script

RATE = 22_050  # espeak-ng's output rate: the timeline is built at it, without resampling
Pcm = npt.NDArray[np.int16]

# Where a voice counts as audible when trimming espeak's own leading/trailing silence: -40 dBFS.
_AUDIBLE = 328


@dataclass(frozen=True)
class Line:
    """One sentence of a recording and the silence after it."""

    text: str
    voice: str = "en-us"
    speed: int = 160  # words per minute
    pause_after: float = 1.0


@dataclass(frozen=True)
class Spoken:
    """Where a sentence ended up in a recording, in seconds (audible speech only)."""

    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Recording:
    """One sample file: its lines and how it is encoded."""

    path: str  # relative to the corpus folder
    lines: tuple[Line, ...]
    encode: tuple[str, ...]  # FFmpeg output options; () writes the 22.05 kHz WAV timeline itself
    lead_in: float = 0.8


HOST, GUEST, ANNOUNCER, CALLER = "en-us+m3", "en-gb+f3", "en-us+f2", "en-gb"

STANDUP = Recording(
    "audio/standup-meeting.wav",
    (
        Line("Good morning everyone, this is the Tuesday standup for the navigation team.", pause_after=1.2),
        Line("Yesterday we finished the new obstacle avoidance tests in the warehouse.", pause_after=1.2),
        Line("The lidar calibration bug is fixed and the patch is ready for review.", pause_after=1.2),
        Line("Today I will pair with Maria on the battery monitoring dashboard.", pause_after=1.2),
        Line("Our only blocker is the delayed shipment of replacement wheel motors.", pause_after=1.0),
    ),
    (),
)

BRIEFING = Recording(
    "audio/product-briefing.mp3",
    tuple(
        Line(text, voice=CALLER, speed=155, pause_after=1.1)
        for text in (
            "Welcome to the product briefing for the HomeBot cleaning robot.",
            "The new model maps every room in the house during its first run.",
            "Owners can schedule a cleaning from the mobile app while they are away from home.",
            "A full charge now lasts for about two hours of vacuuming.",
            "The robot returns to its dock on its own when the battery runs low.",
        )
    ),
    ("-ar", "44100", "-ac", "2", "-c:a", "libmp3lame", "-b:a", "96k"),
)

SAFETY = Recording(
    "audio/safety-announcement.flac",
    tuple(
        Line(text, voice=ANNOUNCER, speed=150, pause_after=1.3)
        for text in (
            "Attention please, this is a safety announcement for all warehouse staff.",
            "The loading dock doors will be closed for repairs on Thursday morning.",
            "Please use the north entrance for all deliveries until further notice.",
            "Hard hats and safety glasses must be worn in the assembly area at all times.",
        )
    ),
    ("-ar", "48000", "-c:a", "flac", "-compression_level", "5"),
)

CALL = Recording(
    "audio/customer-call.m4a",
    (
        Line("Thank you for calling Acme support, how can I help you today?", voice=HOST, pause_after=0.9),
        Line("My robot keeps stopping in the middle of the kitchen floor.", voice=GUEST, pause_after=0.9),
        Line(
            "That usually means the cliff sensors are dirty, so please wipe them with a dry cloth.",
            voice=HOST,
            pause_after=0.9,
        ),
        Line("Great, I will try that tonight and call you back tomorrow.", voice=GUEST, pause_after=1.0),
    ),
    ("-ar", "44100", "-ac", "1", "-c:a", "aac", "-b:a", "96k"),
)

# Mislabelled: FLAC content under an .mp3 name. Detection goes by content, so this succeeds.
MEMO = Recording(
    "audio/voice-memo.mp3",
    (
        Line("Reminder to myself: renew the company domain name before the end of the month.", pause_after=1.0),
        Line("Also order more coffee filters for the office kitchen.", pause_after=1.0),
    ),
    ("-c:a", "flac", "-f", "flac"),
)

# About 2.5 minutes, two voices, pauses from a quarter second (too short for the detector to
# split at) to a second: long enough to be cut into chunks, some of them through speech.
_PODCAST_SCRIPT: tuple[tuple[str, str], ...] = (
    (HOST, "Welcome back to Robots at Work, the podcast about automation in real businesses."),
    (HOST, "My guest today runs operations at a large grocery distribution centre."),
    (GUEST, "Thanks for having me, it is great to be here."),
    (HOST, "Let us start with the basics: what do your robots actually do all day?"),
    (GUEST, "They carry shelves of products to the people who pack customer orders."),
    (GUEST, "Before the robots arrived, our pickers walked about twelve miles every shift."),
    (GUEST, "Now the shelves come to them, and nobody has sore feet at the end of the day."),
    (HOST, "How long did it take to get the whole system running?"),
    (GUEST, "The installation took nine months, and we kept shipping orders the entire time."),
    (GUEST, "We moved one aisle at a time over the weekends, which was exhausting but safe."),
    (HOST, "What was the hardest part of the project?"),
    (GUEST, "Honestly, the floor. The robots need a very flat concrete surface."),
    (GUEST, "We had to grind down and reseal almost half of the building before we started."),
    (HOST, "And what about mistakes in orders, did those change?"),
    (GUEST, "Picking errors dropped sharply, because every shelf now has a light that shows the right bin."),
    (GUEST, "The packer simply follows the light and scans the item before it goes into the box."),
    (HOST, "Did anyone lose their job because of the robots?"),
    (GUEST, "No, we retrained the pickers as robot technicians and quality inspectors."),
    (GUEST, "Several of them now maintain the charging stations and repair the drive units."),
    (HOST, "What happens when a robot breaks down in the middle of the floor?"),
    (GUEST, "The fleet software routes the others around it, and a technician tows it away."),
    (HOST, "What would you tell a company that is thinking about doing the same?"),
    (GUEST, "Start small, measure everything, and involve the people on the floor from the first day."),
    (HOST, "That is great advice. Thank you so much for joining us today."),
    (GUEST, "It was a pleasure, thanks again."),
    (HOST, "Before we finish, one listener question about energy use."),
    (HOST, "How much electricity does a fleet of a few hundred robots need?"),
    (GUEST, "Less than you would think. Each robot charges for a few minutes every hour."),
    (GUEST, "Our whole fleet uses about as much power as the freezers in one aisle."),
    (HOST, "And do the robots work through the night as well?"),
    (GUEST, "They do, but at night they mostly reorganise the shelves for the morning rush."),
    (GUEST, "Popular products are moved closer to the packing stations before the first shift."),
    (HOST, "So the warehouse literally rearranges itself while everyone sleeps."),
    (GUEST, "Exactly, and by six in the morning everything is where it needs to be."),
    (HOST, "Next week we visit a farm where robots pick strawberries at night."),
)
_PODCAST_PAUSES = (0.6, 0.25, 0.8, 0.45, 0.25, 0.7, 1.0, 0.35, 0.5, 0.25)

PODCAST = Recording(
    "audio/podcast-episode.mp3",
    tuple(
        Line(text, voice=voice, speed=170 if voice == HOST else 160, pause_after=_PODCAST_PAUSES[i % 10])
        for i, (voice, text) in enumerate(_PODCAST_SCRIPT)
    ),
    ("-ar", "44100", "-ac", "2", "-c:a", "libmp3lame", "-b:a", "64k"),
)

# Cut short at 40%, as an interrupted upload: the MP3's Xing header still declares the length.
TRUNCATED = Recording(
    "bad/truncated-interview.mp3",
    tuple(
        Line(text, voice=GUEST, pause_after=0.8)
        for text in (
            "In this interview we talk about the history of the company.",
            "The first prototype was built in a garage in nineteen ninety eight.",
            "It could only drive in a straight line and bumped into every wall.",
            "Ten years later the company sold its first commercial robot to a hospital.",
        )
    ),
    ("-ar", "44100", "-ac", "1", "-c:a", "libmp3lame", "-b:a", "64k"),
)
TRUNCATE_AT = 0.4

RECORDINGS: tuple[Recording, ...] = (STANDUP, BRIEFING, SAFETY, CALL, MEMO, PODCAST)

# Bitexact muxing and encoding, no metadata: no encoder version strings or creation times.
_FFMPEG_DETERMINISM = ("-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed (scripts/install_system_deps.sh installs it)")
    return path


@functools.lru_cache(maxsize=512)
def speak(text: str, voice: str = "en-us", speed: int = 160) -> bytes:
    """espeak-ng's speech for ``text`` as 22.05 kHz mono s16 PCM, trimmed to the audible part."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        subprocess.run(
            [_tool("espeak-ng"), "-v", voice, "-s", str(speed), "-w", str(out), text],
            check=True,
            capture_output=True,
        )
        with wave.open(str(out), "rb") as handle:
            if (handle.getframerate(), handle.getnchannels(), handle.getsampwidth()) != (RATE, 1, 2):
                raise RuntimeError(f"unexpected espeak-ng output format for voice {voice}")
            samples = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
    audible = np.flatnonzero(np.abs(samples.astype(np.int32)) >= _AUDIBLE)
    if not len(audible):
        raise RuntimeError(f"espeak-ng produced silence for {text!r}")
    return samples[audible[0] : audible[-1] + 1].tobytes()


def _silence(seconds: float) -> bytes:
    return bytes(2 * round(seconds * RATE))


def render(lines: Sequence[Line], lead_in: float = 0.8) -> tuple[bytes, list[Spoken]]:
    """The recording's 22.05 kHz mono s16 samples and where each sentence landed."""
    parts = [_silence(lead_in)]
    position = round(lead_in * RATE)
    spoken = []
    for line in lines:
        speech = speak(line.text, line.voice, line.speed)
        frames = len(speech) // 2
        spoken.append(Spoken(line.text, round(position / RATE, 3), round((position + frames) / RATE, 3)))
        parts += [speech, _silence(line.pause_after)]
        position += frames + round(line.pause_after * RATE)
    return b"".join(parts), spoken


def _write_wav(path: Path, pcm: bytes) -> None:
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(RATE)
        handle.writeframes(pcm)


def _ffmpeg_command(options: Sequence[str], out: Path) -> list[str]:
    """FFmpeg reading raw 22.05 kHz mono s16 from stdin, single-threaded and bitexact."""
    source = ["-f", "s16le", "-ar", str(RATE), "-ac", "1", "-i", "pipe:0"]
    return [_tool("ffmpeg"), "-nostdin", "-loglevel", "error", "-y", *source, "-threads", "1", *options]


def _encode(pcm: bytes, options: Sequence[str], out: Path) -> None:
    subprocess.run([*_ffmpeg_command(options, out), *_FFMPEG_DETERMINISM, str(out)], input=pcm, check=True)


def write_recording(out_dir: Path, recording: Recording) -> list[Spoken]:
    """Writes one recording under ``out_dir``; returns its sentences' times."""
    pcm, spoken = render(recording.lines, recording.lead_in)
    target = out_dir / recording.path
    target.parent.mkdir(parents=True, exist_ok=True)
    if recording.encode:
        _encode(pcm, recording.encode, target)
    else:
        _write_wav(target, pcm)
    return spoken


@functools.lru_cache(maxsize=32)
def script(recording: Recording) -> tuple[Spoken, ...]:
    """Where each sentence of ``recording`` lands (synthesises it; no file written)."""
    return tuple(render(recording.lines, recording.lead_in)[1])


def duration(recording: Recording) -> float:
    """The recording's length in seconds."""
    pcm, _ = render(recording.lines, recording.lead_in)
    return round(len(pcm) / 2 / RATE, 3)


def write_audio(out_dir: Path) -> list[ExpectedFile]:
    """The sample recordings (WAV, MP3, FLAC, M4A, a mislabelled one, a 2.5-minute podcast)
    and a truncated MP3 under ``bad/``."""
    out_dir = Path(out_dir)
    expected = []
    for recording in RECORDINGS:
        write_recording(out_dir, recording)
        expected.append(ExpectedFile(recording.path, "SUCCEEDED", "audio"))
    write_recording(out_dir, TRUNCATED)
    target = out_dir / TRUNCATED.path
    data = target.read_bytes()
    target.write_bytes(data[: int(len(data) * TRUNCATE_AT)])
    expected.append(ExpectedFile(TRUNCATED.path, "FAILED", "audio", "MediaLens.InvalidMedia", "truncated"))
    return expected


def _sentence(recording: Recording, contains: str) -> Spoken:
    matches = [s for s in script(recording) if contains in s.text]
    if len(matches) != 1:
        raise RuntimeError(f"{contains!r} should be in exactly one sentence of {recording.path}")
    return matches[0]


def audio_queries() -> list[ExpectedQuery]:
    """Searches phrased unlike the sentences that answer them; the answer's text is a phrase
    Whisper (tiny.en and base) writes the same way every time: no numbers, which it may write as
    digits, and no words espeak pronounces ambiguously ("lidar" comes out as "live arc")."""
    questions = (
        ("What is blocking the navigation team?", STANDUP, "wheel motors"),
        ("Which sensor problem was resolved?", STANDUP, "calibration bug is fixed"),
        ("Can I control the vacuum when I am not at home?", BRIEFING, "mobile app"),
        ("Which entrance should be used for deliveries?", SAFETY, "north entrance"),
        ("What must workers wear in the assembly area?", SAFETY, "safety glasses"),
        ("Why does my robot keep stopping?", CALL, "cliff sensors"),
        ("Which web address has to be paid for again soon?", MEMO, "domain name"),
        ("How did the warehouse cut down on wrong items in orders?", PODCAST, "shows the right bin"),
        ("What did the building need before the machines could be installed?", PODCAST, "flat concrete"),
        # Whisper hears "retrained the pickers" as "retained the bigger": a question about the new
        # roles ranked that window on a knife-edge (0.311 vs 0.310), so this one asks about jobs.
        ("Did the robots cost anyone their job?", PODCAST, "robot technicians"),
    )
    queries = []
    for question, recording, contains in questions:
        sentence = _sentence(recording, contains)
        queries.append(
            ExpectedQuery(
                question,
                recording.path,
                None,
                contains,
                expect_start=sentence.start,
                expect_end=sentence.end,
            )
        )
    return queries


# --- long recordings for benchmarks -------------------------------------------------------------


def _pool() -> list[Line]:
    """Every sentence of the sample recordings, in their voices: about four minutes of speech."""
    return [line for recording in (*RECORDINGS, TRUNCATED) for line in recording.lines]


def _long_timeline(minutes: float, seed: int) -> Iterator[tuple[bytes, Spoken | None]]:
    rng = random.Random(seed)
    pool = _pool()
    total = round(minutes * 60 * RATE)
    position = 0
    lead = _silence(0.5)
    yield lead, None
    position += len(lead) // 2
    while position < total:
        line = rng.choice(pool)
        speech = speak(line.text, line.voice, line.speed)
        frames = len(speech) // 2
        yield speech, Spoken(line.text, round(position / RATE, 3), round((position + frames) / RATE, 3))
        pause = _silence(rng.choice((0.2, 0.3, 0.45, 0.6, 0.8, 1.0, 1.5)))
        yield pause, None
        position += frames + len(pause) // 2


def synthesise_speech(path: Path, minutes: float, *, seed: int = 0) -> list[Spoken]:
    """``minutes`` of speech (sample sentences in a seeded random order with varied pauses),
    streamed into FFmpeg, encoded by the file's extension (.wav, .mp3, .flac, .m4a). Memory stays
    small however long the recording; an hour takes about a minute (mostly MP3 encoding)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {
        ".wav": ("-c:a", "pcm_s16le"),
        ".mp3": ("-ar", "44100", "-c:a", "libmp3lame", "-b:a", "64k"),
        ".flac": ("-c:a", "flac"),
        ".m4a": ("-c:a", "aac", "-b:a", "64k"),
    }.get(path.suffix.lower())
    if options is None:
        raise ValueError(f"cannot synthesise to {path.suffix!r}: use .wav, .mp3, .flac or .m4a")
    command = [*_ffmpeg_command(options, path), *_FFMPEG_DETERMINISM, str(path)]
    spoken: list[Spoken] = []
    with subprocess.Popen(command, stdin=subprocess.PIPE) as encoder:
        assert encoder.stdin is not None
        try:
            for pcm, sentence in _long_timeline(minutes, seed):
                encoder.stdin.write(pcm)
                if sentence is not None:
                    spoken.append(sentence)
        finally:
            encoder.stdin.close()
    if encoder.returncode:
        raise RuntimeError(f"ffmpeg failed ({encoder.returncode}) writing {path}")
    return spoken


def _cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("sample-media"), help="corpus folder (default: %(default)s)")
    parser.add_argument("--synthesise", type=float, metavar="MINUTES", help="write one long recording instead")
    parser.add_argument("--to", type=Path, help="the long recording's path (.wav, .mp3, .flac, .m4a)")
    args = parser.parse_args(argv)
    if args.synthesise:
        if args.to is None:
            parser.error("--synthesise needs --to")
        spoken = synthesise_speech(args.to, args.synthesise)
        print(f"wrote {args.to}: {len(spoken)} sentences, {spoken[-1].end / 60:.1f} min")
        return 0
    files = write_audio(args.out)
    print(f"wrote {len(files)} audio samples under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_cli())
