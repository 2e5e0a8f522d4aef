"""Benchmarks the voice services on this machine, in one run:

- synthesis with the Piper voice: real-time factor and characters per second, one sentence per
  model run vs batches of sentences (and espeak-ng's fallback voice for scale);
- narration of a document-length text: the round-trip word error rate (transcribed back by the
  speech-to-text model, both sides in spoken form) and how far word marks sit from where the
  recogniser hears the same words;
- ``POST /api/speech`` through ``medialens serve``: time to the first audio byte (streamed) and to
  the whole answer;
- ``POST /api/search/voice`` with a 3-second question (warm): hear + search latency;
- the modelled cost per million characters on the deployed workers beside Amazon Polly's price.

Example::

    .venv/bin/python scripts/bench_voice.py --sentences 48 --json .bench/voice.json
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_embeddings
from medialens.local.server import LocalServer
from medialens.media.audio.decode import load_audio
from medialens.media.audio.encode import AudioEncoder
from medialens.ml.asr import get_speech_recognizer
from medialens.ml.speech_synthesis import PiperVoice, get_speech_synthesizer
from medialens.ml.store.store import store_for
from medialens.pipeline.narration import RoundTripCheck, speak_text
from medialens.settings import Settings, get_settings

console = Console()
# Published and on-demand prices (us-east-1, 2026-12) the cost model uses; change them here.
POLLY_NEURAL_PER_MILLION_CHARS = 16.0
POLLY_STANDARD_PER_MILLION_CHARS = 4.0
CPU_WORKER = ("c7i.large, 2 vCPU", 0.08925)  # like this 2-core machine
GPU_WORKER = ("g5.xlarge, A10G", 1.006)


def _synthesis(voice: PiperVoice, sentences: list[str], batch_size: int, repeats: int) -> dict[str, float]:
    voice.batch_size = batch_size
    voice.synthesize(sentences[:2])  # warm-up
    best = float("inf")
    audio_s = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        audio = voice.synthesize(sentences)
        best = min(best, time.perf_counter() - started)
        audio_s = sum(len(a) for a in audio) / voice.sample_rate
    characters = sum(len(s) for s in sentences)
    return {
        "batch_size": batch_size,
        "seconds": round(best, 3),
        "audio_s": round(audio_s, 2),
        "rtf": round(best / audio_s, 4),
        "chars_per_s": round(characters / best, 1),
    }


def _narration(settings: Settings, text: str) -> dict[str, Any]:
    voice = get_speech_synthesizer(settings)
    assert isinstance(voice, PiperVoice)
    recognizer = get_speech_recognizer(settings)
    check = RoundTripCheck(recognizer, voice.espeak_voice, "en")
    marks = io.StringIO()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "narration.mp3"
        started = time.perf_counter()
        with AudioEncoder(path, voice.sample_rate) as encoder:
            spoken = speak_text(text, voice, encoder.write, marks, check)
        seconds = time.perf_counter() - started
        heard = recognizer.transcribe(load_audio(path, max_duration_s=None), language="en").words

    def key(word: str) -> str:
        return word.strip(" .,;:?!").lower()

    words = [json.loads(line) for line in marks.getvalue().splitlines() if '"type":"word"' in line]
    heard_once = {key(w.text): w.start * 1000 for w in heard if sum(key(h.text) == key(w.text) for h in heard) == 1}
    said_once = [m for m in words if sum(key(o["value"]) == key(m["value"]) for o in words) == 1]
    errors = [abs(heard_once[key(m["value"])] - m["time"]) for m in said_once if key(m["value"]) in heard_once]
    return {
        "characters": len(text),
        "audio_s": round(spoken.duration_s, 1),
        "seconds_with_check": round(seconds, 1),
        "word_error_rate": round(check.word_error_rate or 0.0, 4),
        "reference_words": check.reference_words,
        "word_mark_error_ms": {
            "words_compared": len(errors),
            "median": round(statistics.median(errors), 1) if errors else None,
            "p90": round(float(np.percentile(errors, 90)), 1) if errors else None,
        },
    }


def _post(port: int, path: str, body: bytes, content_type: str) -> tuple[float, float, int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    started = time.perf_counter()
    connection.request("POST", path, body=body, headers={"Content-Type": content_type})
    response = connection.getresponse()
    first = response.read1(65536)
    first_s = time.perf_counter() - started
    rest = response.read()
    total_s = time.perf_counter() - started
    connection.close()
    return first_s, total_s, response.status, first + rest


def _served(settings: Settings, repeats: int) -> dict[str, Any]:
    question = "what is the daily meal allowance abroad"
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "question.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), question], check=True)
        audio = wav.read_bytes()
        question_s = len(load_audio(wav)) / 16000
    text = "Your flight to Stockholm leaves at nine. Please be at the gate by half past eight. " * 3
    body = json.dumps({"text": text, "format": "mp3"}).encode()
    with LocalServer(settings, port=0, run_pipeline=False) as server:
        _post(server.port, "/api/speech", body, "application/json")  # warm: load the voice
        _post(server.port, "/api/search/voice", audio, "audio/wav")  # warm: load the recogniser
        speech = [_post(server.port, "/api/speech", body, "application/json") for _ in range(repeats)]
        voice = [_post(server.port, "/api/search/voice", audio, "audio/wav") for _ in range(repeats)]
    assert all(status == 200 for _, _, status, _ in speech + voice), [s for *_, s, _ in speech + voice]
    heard = json.loads(voice[-1][3])["heard"]
    return {
        "speech_chars": len(text),
        "speech_first_byte_ms": round(statistics.median(f for f, _, _, _ in speech) * 1000, 1),
        "speech_total_ms": round(statistics.median(t for _, t, _, _ in speech) * 1000, 1),
        "voice_question_s": round(question_s, 2),
        "voice_search_ms": round(statistics.median(t for _, t, _, _ in voice) * 1000, 1),
        "voice_heard": heard["text"],
        "voice_hear_ms": heard["took_ms"],
    }


def _question_decoding(settings: Settings, repeats: int) -> dict[str, Any]:
    """A spoken question transcribed greedily (what /search/voice does) vs with the beam search
    long recordings use, in this process: time and what each heard."""
    recognizer = get_speech_recognizer(settings)
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "question.wav"
        question = "which firmware release is the sprint aiming for"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), question], check=True)
        audio = load_audio(wav)
    results: dict[str, Any] = {"question_s": round(len(audio) / 16000, 2)}
    for label, quick in (("beam", False), ("greedy", True)):
        recognizer.transcribe(audio, quick=quick)  # warm
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            transcript = recognizer.transcribe(audio, quick=quick)
            times.append(time.perf_counter() - started)
        heard = " ".join(segment.text.strip() for segment in transcript.segments)
        results[label] = {"ms": round(statistics.median(times) * 1000, 1), "heard": heard}
    results["greedy_vs_beam_speed"] = round(results["beam"]["ms"] / results["greedy"]["ms"], 2)
    return results


def _cost(chars_per_s: float) -> dict[str, Any]:
    hours = 1_000_000 / chars_per_s / 3600
    name, price = CPU_WORKER
    return {
        "cpu_worker": name,
        "cpu_hours_per_million_chars": round(hours, 2),
        "cpu_usd_per_million_chars": round(hours * price, 3),
        "polly_neural_usd_per_million_chars": POLLY_NEURAL_PER_MILLION_CHARS,
        "polly_standard_usd_per_million_chars": POLLY_STANDARD_PER_MILLION_CHARS,
        "gpu_worker_usd_per_hour": GPU_WORKER[1],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = get_settings()
    sentences = bench_embeddings.make_sentences(args.sentences, args.seed)
    sentences = [s for s in sentences if len(s) < 400][: args.sentences]
    voice = PiperVoice(settings.tts_voice, store=store_for(settings))
    synthesis = [_synthesis(voice, sentences, size, args.repeats) for size in (1, 8)]
    fallback = get_speech_synthesizer(settings, "sv")
    started = time.perf_counter()
    spoken = fallback.synthesize(sentences)
    fallback_s = time.perf_counter() - started
    fallback_audio = sum(len(a) for a in spoken) / fallback.sample_rate
    narration = _narration(settings, " ".join(sentences[: args.narration_sentences]))
    served = _served(settings, args.repeats)
    question = _question_decoding(settings, args.repeats)
    best_chars = max(row["chars_per_s"] for row in synthesis)
    return {
        "command": "python scripts/bench_voice.py " + shlex.join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "voice": voice.version,
        "providers": voice.providers,
        "sentences": len(sentences),
        "synthesis": synthesis,
        "batched_vs_single_speed": round(synthesis[0]["seconds"] / synthesis[1]["seconds"], 2),
        "espeak_fallback": {"rtf": round(fallback_s / fallback_audio, 4), "voice": fallback.version},
        "narration": narration,
        "served": served,
        "question_decoding": question,
        "cost": _cost(best_chars),
    }


def print_table(results: dict[str, Any]) -> None:
    table = Table(title=f"voice: {results['voice']} on {', '.join(results['providers'])}")
    for column in ("what", "figure"):
        table.add_column(column)
    for row in results["synthesis"]:
        table.add_row(
            f"synthesis, batch {row['batch_size']}",
            f"RTF {row['rtf']}, {row['chars_per_s']} chars/s ({row['audio_s']} s)",
        )
    table.add_row("batched vs single (speed)", f"{results['batched_vs_single_speed']}x")
    table.add_row("espeak-ng fallback", f"RTF {results['espeak_fallback']['rtf']}")
    narration = results["narration"]
    table.add_row(
        "narration round trip",
        f"WER {narration['word_error_rate']:.1%} over {narration['reference_words']} words, "
        f"{narration['audio_s']} s of audio; word marks vs heard: median "
        f"{narration['word_mark_error_ms']['median']} ms, p90 {narration['word_mark_error_ms']['p90']} ms",
    )
    served = results["served"]
    table.add_row(
        "POST /api/speech",
        f"first byte {served['speech_first_byte_ms']} ms, all {served['speech_total_ms']} ms "
        f"({served['speech_chars']} chars)",
    )
    table.add_row(
        "POST /api/search/voice",
        f"{served['voice_search_ms']} ms for a {served['voice_question_s']} s question "
        f"(hear {served['voice_hear_ms']} ms)",
    )
    question = results["question_decoding"]
    table.add_row(
        f"a {question['question_s']} s question",
        f"greedy {question['greedy']['ms']} ms vs beam {question['beam']['ms']} ms "
        f"({question['greedy_vs_beam_speed']}x); heard: {question['greedy']['heard']!r} "
        f"/ {question['beam']['heard']!r}",
    )
    cost = results["cost"]
    table.add_row(
        "cost per million characters",
        f"${cost['cpu_usd_per_million_chars']} on {cost['cpu_worker']} vs Polly neural "
        f"${cost['polly_neural_usd_per_million_chars']} (standard ${cost['polly_standard_usd_per_million_chars']})",
    )
    console.print(table)
    console.print(f"reproduce: {results['command']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=48, help="sentences synthesised per measurement")
    parser.add_argument("--narration-sentences", type=int, default=24, help="sentences in the narrated text")
    parser.add_argument("--repeats", type=int, default=3, help="passes per measurement; the best (or median) counts")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    results = run(args)
    print_table(results)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
