"""Benchmarks speech-to-text on CPU, and the speech path end to end on a one-hour recording.

Part 1, recognition speed as multiples of real time (audio seconds per wall second) on a few
minutes of espeak-ng speech cut into ~60 s chunks at silences, for each of: Whisper tiny.en and
base; int8 and float32 compute; chunks one at a time (all threads on one chunk), decoded with
faster-whisper's BatchedInferencePipeline (batch 8), or two chunks in parallel (one thread
each). Each run also reports its word error rate against the script (WER-ish: espeak's voices,
not people).

Part 2, end to end in a child process (so its peak RSS is its own): synthesise N minutes
(default 60) to MP3, then decode -> VAD -> chunk (90 s) -> transcribe -> stitch -> VTT and
passages, as the steps do, reporting media minutes per wall minute per stage and overall, peak
RSS (the kernel's VmHWM; VmRSS sampled every 0.1 s per stage) and the WER.

Part 3 (``--cascade``, instead of parts 1 and 2), the English cascade against its two models:
a few minutes of espeak-ng speech per condition, clean and under white noise at the given SNRs,
cut into chunks as PrepareAudio cuts them, transcribed by whisper-base alone, whisper-tiny-en
alone, and the cascade (tiny.en first, base over the segments whose mean word probability is
under each threshold), stitched; per condition and over all of them: WER, multiples of real time
and the fallback rate (the share of the audio base re-ran; the segments it replaced).

    .venv/bin/python scripts/bench_speech.py --quick              # ~4 min on 2 cores
    .venv/bin/python scripts/bench_speech.py --json bench.json    # ~10-15 min on 2 cores
    .venv/bin/python scripts/bench_speech.py --cascade            # ~10 min on 2 cores
    .venv/bin/python scripts/bench_speech.py --trim               # ~5 min on 2 cores

Part 4 (``--trim``, instead of the others), trimmed windows against 30-s windows: short clips
(1-4 espeak-ng sentences in English, and a few in Swedish, German, French and Spanish, under
faint noise) transcribed by whisper-base with each window encoded over its speech
(``speech_trim_windows``) and over the full 30 s, the language detected (as a one-chunk asset
is) and told; WER, seconds and the windows decoded again because they looked like a loop.

Timings are wall-clock: on a shared machine, read them with the load average printed first.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from medialens.media.audio.chunking import AudioChunk, ChunkingParams, plan_chunks
from medialens.media.audio.decode import load_audio
from medialens.media.audio.prepare import prepare_speech_audio
from medialens.media.audio.samples import SAMPLE_RATE
from medialens.media.audio.vad import detect_speech
from medialens.media.transcript import ChunkTranscript, Fallback, Transcript, speech_passages, stitch, to_webvtt
from medialens.ml.asr import (
    FALLBACK_MARGIN_S,
    WHOLE_CHUNK_SHARE,
    FasterWhisperRecognizer,
    SpeechCascade,
    available_cpus,
    speech_batch_size,
)
from medialens.ml.store.store import ModelStore
from medialens.settings import get_settings
from sample_audio import RATE, Spoken, _pool, speak, synthesise_speech  # a sibling script

# --- word error rate against the synthesis script ------------------------------------------------


def _tokens(text: str) -> list[str]:
    return [t for t in (re.sub(r"[^\w']", "", w.casefold()) for w in text.split()) if t]


def _edits(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    row = list(range(len(hypothesis) + 1))
    for i in range(1, len(reference) + 1):
        diagonal, row[0] = row[0], i
        for j in range(1, len(hypothesis) + 1):
            substitution = diagonal + (reference[i - 1] != hypothesis[j - 1])
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, substitution)
    return row[-1]


def word_error_rate(script: Sequence[Spoken], transcript: Transcript) -> float:
    """WER over blocks of about a minute, split in the pauses between sentences (a full
    alignment of an hour's 9,000 words would take minutes in pure Python)."""
    errors, total = word_errors(script, transcript)
    return errors / max(1, total)


def word_errors(script: Sequence[Spoken], transcript: Transcript) -> tuple[int, int]:
    """Edits and reference words of :func:`word_error_rate` (to pool several recordings)."""
    words = transcript.words
    errors = total = 0
    block: list[Spoken] = []
    low = 0.0
    for k, sentence in enumerate(script):
        block.append(sentence)
        last = k == len(script) - 1
        if not last and sentence.end - block[0].start < 60:
            continue
        high = float("inf") if last else (sentence.end + script[k + 1].start) / 2  # mid-pause
        reference = _tokens(" ".join(s.text for s in block))
        hypothesis = [t for w in words if low <= w.middle < high for t in _tokens(w.text)]
        errors += _edits(reference, hypothesis)
        total += len(reference)
        block, low = [], high
    return errors, total


# --- resource sampling ----------------------------------------------------------------------------


def _status_mib(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as handle:  # noqa: PTH123 - a /proc read
        for line in handle:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _rss_mib() -> float:
    return _status_mib("VmRSS")


class RssSampler:
    """Samples this process's VmRSS every ``interval`` s; ``peak()`` per stage."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self._peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._peak = max(self._peak, _rss_mib())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @contextmanager
    def stage(self, results: dict[str, Any], name: str, media_s: float | None = None) -> Iterator[None]:
        self._peak = _rss_mib()
        started, cpu_started = time.perf_counter(), time.process_time()
        yield
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        self._peak = max(self._peak, _rss_mib())
        entry: dict[str, Any] = {
            "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1),
            "peak_rss_mib": round(self._peak, 1),  # sampled during the stage
            "max_rss_so_far_mib": round(_max_rss_mib(), 1),  # the kernel's high-water mark
        }
        if media_s is not None:
            entry["media_min_per_wall_min"] = round(media_s / wall, 1)
            entry["media_min_per_cpu_min"] = round(media_s / cpu, 1)
        results[name] = entry


def _max_rss_mib() -> float:
    """This process's peak RSS: the kernel's high-water mark (VmHWM), reset by exec.

    Not getrusage's ru_maxrss: Linux carries that over from the parent across fork and exec,
    so a child started by a process that had grown large reports the parent's size.
    """
    return _status_mib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- part 1: recognition speed --------------------------------------------------------------------


def _chunks_of(audio: np.ndarray) -> list[AudioChunk]:
    # 60 s chunks, so that a few minutes make several (the parallel mode needs two at least).
    regions = detect_speech([audio])
    return plan_chunks(len(audio) / SAMPLE_RATE, regions, ChunkingParams(target_s=60.0))


def _run(
    store: ModelStore,
    model: str,
    compute: str,
    mode: str,
    audio: np.ndarray,
    chunks: list[AudioChunk],
    threads: int,
    beam: int = 5,
) -> tuple[float, float, Transcript, str]:
    """One configuration over ``chunks``: wall seconds, CPU seconds (all threads), transcript."""
    parallel = 2 if mode == "parallel" else 1
    recognizer = FasterWhisperRecognizer(
        store,
        model,
        device="cpu",
        compute_type=compute,
        cpu_threads=max(1, threads // parallel),
        num_workers=parallel,
        batch_size=8 if mode == "batched" else 0,
        beam_size=beam,
    )
    recognizer.load()  # loading is not recognition: time it apart
    recognizer.transcribe(audio[: 5 * SAMPLE_RATE], language="en")  # warm-up

    def one(chunk: AudioChunk) -> ChunkTranscript:
        samples = audio[round(chunk.start * SAMPLE_RATE) : round(chunk.end * SAMPLE_RATE)]
        return recognizer.transcribe(samples, offset_s=chunk.start, language="en")

    started, cpu_started = time.perf_counter(), time.process_time()
    if parallel > 1:
        with ThreadPoolExecutor(parallel) as pool:
            parts = list(pool.map(one, chunks))
    else:
        parts = [one(chunk) for chunk in chunks]
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return wall, cpu, stitch(parts, chunks), recognizer.version


def recognition_matrix(
    store: ModelStore,
    minutes: float,
    models: Sequence[str],
    modes: Sequence[tuple[str, str]],
    threads: int,
    beams: Sequence[int] = (5,),
) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "matrix.mp3"
        script = synthesise_speech(source, minutes, seed=1)
        audio = load_audio(source)
    duration = len(audio) / SAMPLE_RATE
    chunks = _chunks_of(audio)
    rows = []
    for model in models:
        for (compute, mode), beam in itertools.product(modes, beams):
            wall, cpu, transcript, version = _run(store, model, compute, mode, audio, chunks, threads, beam)
            row = {
                "model": version,
                "mode": mode,
                "beam": beam,
                "audio_s": round(duration, 1),
                "chunks": len(chunks),
                "wall_s": round(wall, 1),
                "x_realtime": round(duration / wall, 1),
                # Audio seconds per CPU second: what a busy shared machine distorts least.
                "x_realtime_per_cpu": round(duration / cpu, 1),
                "wer": round(word_error_rate(script, transcript), 3),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


# --- part 3: the English cascade -------------------------------------------------------------------


def with_noise(audio: np.ndarray, snr_db: float | None, seed: int) -> np.ndarray:
    """``audio`` plus white noise ``snr_db`` under its mean power (None: as it is)."""
    if snr_db is None:
        return audio
    power = float(np.mean(audio**2))
    noise = np.random.default_rng(seed).normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), audio.shape)
    return (audio + noise).astype(np.float32)


def _condition(snr: str) -> float | None:
    return None if snr == "clean" else float(snr)


def cascade_comparison(
    store: ModelStore,
    minutes: float,
    snrs: Sequence[str],
    thresholds: Sequence[float],
    whole_share: float,
    seed: int = 100,
) -> list[dict[str, Any]]:
    """Base alone, tiny.en alone and the cascade at each threshold over the same chunks of each
    condition: one row per (condition, configuration), then the conditions pooled."""
    settings = get_settings()
    chunking = ChunkingParams(target_s=settings.speech_chunk_seconds, overlap_s=settings.speech_chunk_overlap_seconds)

    def recognizer(name: str) -> FasterWhisperRecognizer:
        model = FasterWhisperRecognizer(store, name, device="cpu", batch_size=speech_batch_size(settings))
        model.load()
        model.transcribe(np.zeros(5 * SAMPLE_RATE, dtype=np.float32) + 1e-4, language="en")  # warm-up
        return model

    base, tiny = recognizer(settings.speech_model), recognizer(settings.speech_fast_model or "whisper-tiny-en")
    configurations: list[tuple[str, Any]] = [("base", base), ("tiny.en", tiny)]
    configurations += [
        (f"cascade@{t:g}", SpeechCascade(tiny, base, t, margin_s=FALLBACK_MARGIN_S, whole_chunk_share=whole_share))
        for t in thresholds
    ]
    rows: list[dict[str, Any]] = []
    for n, snr in enumerate(snrs):
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "speech.mp3"
            script = synthesise_speech(source, minutes, seed=seed + n)
            audio = with_noise(load_audio(source), _condition(snr), seed=n)
        duration = len(audio) / SAMPLE_RATE
        chunks = plan_chunks(duration, detect_speech([audio]), chunking)
        for name, model in configurations:
            started, cpu_started = time.perf_counter(), time.process_time()
            parts = [
                model.transcribe(
                    audio[round(c.start * SAMPLE_RATE) : round(c.end * SAMPLE_RATE)], offset_s=c.start, language="en"
                )
                if c.has_speech
                else ChunkTranscript(offset_s=c.start, duration_s=c.duration)
                for c in chunks
            ]
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            transcript = stitch(parts, chunks)
            errors, total = word_errors(script, transcript)
            fallback = _summed(transcript.fallbacks)
            row = {
                "condition": snr if snr == "clean" else f"{snr} dB",
                "model": name,
                "audio_s": round(duration, 1),
                "wall_s": round(wall, 1),
                "x_realtime": round(duration / wall, 1),
                "cpu_s": round(cpu, 1),
                # Audio seconds per CPU second (all threads): what a busy shared machine distorts least.
                "x_realtime_per_cpu": round(duration / cpu, 2),
                "wer": round(errors / max(1, total), 3),
                "errors": errors,
                "words": total,
                "versions": transcript.model_version,
            }
            if fallback is not None:
                row |= _fallback_figures(fallback)
            print(json.dumps(row), flush=True)
            rows.append(row)
    for name, _ in configurations:
        mine = [r for r in rows if r["model"] == name]
        pooled: dict[str, Any] = {"condition": "all", "model": name}
        audio_s, wall_s = sum(r["audio_s"] for r in mine), sum(r["wall_s"] for r in mine)
        errors, total = sum(r["errors"] for r in mine), sum(r["words"] for r in mine)
        cpu_s = sum(r["cpu_s"] for r in mine)
        pooled |= {"audio_s": round(audio_s, 1), "wall_s": round(wall_s, 1), "x_realtime": round(audio_s / wall_s, 1)}
        pooled |= {"cpu_s": round(cpu_s, 1), "x_realtime_per_cpu": round(audio_s / cpu_s, 2)}
        pooled |= {"wer": round(errors / max(1, total), 3), "errors": errors, "words": total}
        records = [r["fallback"] for r in mine if "fallback" in r]
        if records:
            pooled |= _fallback_figures(
                Fallback.model_validate(records[0]).plus(*map(Fallback.model_validate, records[1:]))
            )
        rows.append(pooled)
    return rows


def _summed(fallbacks: Sequence[Fallback]) -> Fallback | None:
    return fallbacks[0].plus(*fallbacks[1:]) if fallbacks else None


def _fallback_figures(fallback: Fallback) -> dict[str, Any]:
    return {
        "fallback_rate": round(fallback.rate, 3),  # share of the audio re-run
        "rerun_segments": f"{fallback.rerun_segments}/{fallback.segments}",
        "unheard_s": round(fallback.unheard_seconds, 1),
        "whole_chunks": fallback.whole_chunks,
        "fallback": fallback.model_dump(mode="json", exclude={"spans"}),
    }


def print_cascade_table(rows: Sequence[dict[str, Any]]) -> None:
    print("\n| condition | model | WER | x real time (wall) | per CPU s | fallback rate (audio) | segments re-run |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        rate = detail = ""
        if "fallback_rate" in r:
            rate = f"{r['fallback_rate']:.0%}"
            detail = r["rerun_segments"] + (f" + {r['unheard_s']:g} s skipped" if r["unheard_s"] else "")
        speed = f"{r['x_realtime']:g} | {r['x_realtime_per_cpu']:g}"
        print(f"| {r['condition']} | {r['model']} | {r['wer']:.1%} | {speed} | {rate} | {detail} |")


# --- part 2: end to end ---------------------------------------------------------------------------


# --- trimmed windows against 30-s windows (part 4) -------------------------------------------------

# Sentences in the other languages espeak-ng speaks with its own voice for each (language, text).
_FOREIGN_LINES = (
    ("sv", "Tåget till Göteborg är försenat med tjugo minuter på grund av ett signalfel."),
    ("sv", "Vi ses på biblioteket efter lunch, ta med dina anteckningar."),
    ("sv", "Priset på elektricitet steg kraftigt under den kalla vintern."),
    ("sv", "Min mormor odlar tomater och gurkor i sitt växthus."),
    ("de", "Der Zug nach Berlin fährt heute von Gleis sieben ab."),
    ("de", "Bitte schließen Sie die Fenster, bevor Sie das Büro verlassen."),
    ("de", "Die Ausstellung im Museum wurde um zwei Wochen verlängert."),
    ("fr", "Le marché du samedi matin propose des fromages de toute la région."),
    ("fr", "Nous avons réservé une table pour quatre personnes à vingt heures."),
    ("es", "El museo abre sus puertas a las diez de la mañana todos los días."),
    ("es", "Mi hermano trabaja como enfermero en un hospital de Madrid."),
)


def short_clips(english: int, seed: int) -> list[tuple[str, np.ndarray, str]]:
    """(language, 16 kHz samples, what is said): ``english`` clips of 1-4 random sample
    sentences, then per other language its sentences one, two, ... at a time."""
    from scipy.signal import resample_poly

    def samples(text: str, voice: str, speed: int) -> np.ndarray:
        pcm = np.frombuffer(speak(text, voice, speed), dtype="<i2").astype(np.float32) / 32768
        return np.asarray(resample_poly(pcm, SAMPLE_RATE, RATE), dtype=np.float32)

    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    pool = _pool()
    scripts: list[tuple[str, list[tuple[str, str, int]]]] = []
    for _ in range(english):
        lines = rng.sample(pool, rng.choice((1, 1, 2, 2, 3, 4)))
        scripts.append(("en", [(line.text, line.voice, line.speed) for line in lines]))
    for language in dict.fromkeys(language for language, _ in _FOREIGN_LINES):
        said = [text for spoken, text in _FOREIGN_LINES if spoken == language]
        scripts += [(language, [(text, language, 155) for text in said[:n]]) for n in range(1, len(said) + 1)]
    clips = []
    for language, lines in scripts:
        parts = [np.zeros(SAMPLE_RATE // 2, dtype=np.float32)]
        for text, voice, speed in lines:
            parts += [samples(text, voice, speed), np.zeros(int(SAMPLE_RATE * rng.uniform(0.3, 1.2)), np.float32)]
        audio = np.concatenate(parts)
        audio += noise.normal(0.0, 0.003, len(audio)).astype(np.float32)  # -50 dBFS: no digital silence
        clips.append((language, audio, " ".join(text for text, _, _ in lines)))
    return clips


def trim_comparison(store: ModelStore, english: int, seed: int) -> list[dict[str, Any]]:
    """Per (windows, language detected or told): WER over the clips, seconds, multiples of real
    time and the windows decoded again; English and the other languages apart and together."""
    settings = get_settings()
    clips = short_clips(english, seed)
    rows = []
    for trim in (False, True):
        model = FasterWhisperRecognizer(
            store,
            settings.speech_model,
            device="cpu",
            batch_size=max(1, speech_batch_size(settings)),
            trim_windows=trim,
        )
        model.load()
        model.transcribe(clips[0][1], language="en")  # warm-up
        for told in (False, True):
            tally: dict[str, list[float]] = {}
            redecoded_before = model.windows_redecoded
            for language, audio, text in clips:
                started = time.perf_counter()
                heard = model.transcribe(audio, language=language if told else None)
                seconds = time.perf_counter() - started
                reference = _tokens(text)
                hypothesis = [t for segment in heard.segments for word in segment.words for t in _tokens(word.text)]
                for group in ("en" if language == "en" else "other", "all"):
                    errors, words, spent, media = tally.setdefault(group, [0, 0, 0.0, 0.0])
                    tally[group] = [
                        errors + _edits(reference, hypothesis),
                        words + len(reference),
                        spent + seconds,
                        media + len(audio) / SAMPLE_RATE,
                    ]
            for group, (errors, words, spent, media) in tally.items():
                rows.append(
                    {
                        "windows": "trimmed" if trim else "30 s",
                        "language": "told" if told else "detected",
                        "clips": group,
                        "wer": round(errors / max(1, words), 4),
                        "seconds": round(spent, 2),
                        "x_real_time": round(media / spent, 1),
                        "media_s": round(media, 1),
                    }
                )
            rows[-1]["redecoded_windows"] = model.windows_redecoded - redecoded_before
            print(json.dumps(rows[-1]), flush=True)
    return rows


def print_trim_table(rows: Sequence[dict[str, Any]]) -> None:
    print(f"{'windows':9} {'language':9} {'clips':6} {'WER':>7} {'seconds':>8} {'x real':>7} {'again':>6}")
    for row in rows:
        again = row.get("redecoded_windows", "")  # on each (windows, language) pair's last row
        print(
            f"{row['windows']:9} {row['language']:9} {row['clips']:6} {row['wer']:7.1%} "
            f"{row['seconds']:8.1f} {row['x_real_time']:7.1f} {again!s:>6}"
        )


def end_to_end_child(
    source: Path, script_path: Path, model: str, workers: int, threads: int, batch_size: int
) -> dict[str, Any]:
    """Runs in a fresh process: the steps' path over one file, with per-stage figures."""
    script = [Spoken(**s) for s in json.loads(script_path.read_text(encoding="utf-8"))]
    store = ModelStore(get_settings().models_dir)
    results: dict[str, Any] = {"baseline_rss_mib": round(_rss_mib(), 1)}
    with RssSampler() as sampler, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with sampler.stage(results, "decode_vad_chunk"):
            prepared = prepare_speech_audio(source, work, chunking=ChunkingParams(target_s=90.0))
        duration = prepared.info.duration_s
        prepare = results["decode_vad_chunk"]
        prepare["media_min_per_wall_min"] = round(duration / prepare["wall_s"], 1)
        prepare["media_min_per_cpu_min"] = round(duration / max(prepare["cpu_s"], 0.1), 1)
        recognizer = FasterWhisperRecognizer(
            store,
            model,
            device="cpu",
            cpu_threads=max(1, threads // workers),
            num_workers=workers,
            batch_size=batch_size,
        )
        with sampler.stage(results, "load_model"):
            recognizer.load()
        speech_chunks = [c for c in prepared.chunks if c.has_speech]

        def one(chunk: AudioChunk) -> ChunkTranscript:
            if not chunk.has_speech:
                return ChunkTranscript(offset_s=chunk.start, duration_s=chunk.duration)
            return recognizer.transcribe_wav(work / (chunk.file or ""), offset_s=chunk.start)

        with sampler.stage(results, "transcribe", duration), ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(one, prepared.chunks))
        with sampler.stage(results, "stitch_vtt_passages"):
            transcript = stitch(parts, prepared.chunks)
            vtt = to_webvtt(transcript)
            passages = speech_passages(transcript)
    total = sum(stage["wall_s"] for stage in results.values() if isinstance(stage, dict))
    cpu_total = sum(stage["cpu_s"] for stage in results.values() if isinstance(stage, dict))
    results.update(
        {
            "model": recognizer.version,
            "workers": workers,
            "batch_size": batch_size,
            "threads_per_worker": recognizer.cpu_threads,
            "media_minutes": round(duration / 60, 1),
            "chunks": len(prepared.chunks),
            "chunks_with_speech": len(speech_chunks),
            "words": len(transcript.words),
            "passages": len(passages),
            "vtt_kib": round(len(vtt.encode()) / 1024),
            "wall_s": round(total, 1),
            "media_min_per_wall_min": round(duration / total, 1),
            "cpu_s": round(cpu_total, 1),
            "media_min_per_cpu_min": round(duration / cpu_total, 1),
            "peak_rss_mib": round(_max_rss_mib(), 1),
            "wer": round(word_error_rate(script, transcript), 3),
        }
    )
    return results


def end_to_end(minutes: float, model: str, workers: int, threads: int, batch_size: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        source, script_path = Path(tmp) / "long.mp3", Path(tmp) / "script.json"
        started = time.perf_counter()
        script = synthesise_speech(source, minutes, seed=2)
        synthesis_s = time.perf_counter() - started
        script_path.write_text(json.dumps([s.__dict__ for s in script]), encoding="utf-8")
        command = [sys.executable, __file__, "--e2e-child", str(source), str(script_path), model, str(workers)]
        command += ["--threads", str(threads), "--e2e-batch-size", str(batch_size)]
        child = subprocess.run(command, check=True, capture_output=True, text=True)
    results: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    results["synthesis_s"] = round(synthesis_s, 1)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2 min matrix, 10 min end to end (~4 min)")
    parser.add_argument("--matrix-minutes", type=float, help="audio for part 1 (default 3; quick 2; 0 skips)")
    parser.add_argument("--e2e-minutes", type=float, help="audio for part 2 (default 60; quick 10; 0 skips)")
    parser.add_argument("--e2e-model", default="whisper-tiny-en")
    parser.add_argument("--e2e-workers", type=int, default=1, help="chunks transcribed at once")
    parser.add_argument(
        "--e2e-batch-size", type=int, default=speech_batch_size(get_settings()), help="0: one window at a time"
    )
    parser.add_argument("--threads", type=int, default=available_cpus())
    parser.add_argument("--models", nargs="+", default=["whisper-tiny-en", "whisper-base"], help="part 1's models")
    parser.add_argument(
        "--modes", nargs="+", help="part 1's COMPUTE:MODE pairs (e.g. int8:batched); MODE sequential, batched, parallel"
    )
    parser.add_argument("--beams", nargs="+", type=int, default=[5], help="part 1's beam sizes (1: greedy)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--cascade", action="store_true", help="part 3 only: base, tiny.en and the cascade")
    parser.add_argument("--cascade-minutes", type=float, default=3.0, help="speech per condition (default 3)")
    parser.add_argument(
        "--cascade-snr", nargs="+", default=["clean", "10", "0", "-6"], help="conditions: clean or an SNR in dB"
    )
    parser.add_argument(
        "--cascade-thresholds",
        nargs="+",
        type=float,
        default=[0.7, 0.8, 0.85],
        help="minimum mean word probability of a kept segment",
    )
    parser.add_argument(
        "--cascade-whole-share", type=float, default=WHOLE_CHUNK_SHARE, help="re-run a chunk whole from this share"
    )
    parser.add_argument("--trim", action="store_true", help="part 4 only: trimmed against 30-s windows")
    parser.add_argument("--trim-english-clips", type=int, default=24, help="short English clips (default 24)")
    parser.add_argument("--cascade-seed", type=int, default=100, help="the sentences' order (per condition: + n)")
    parser.add_argument(
        "--e2e-child", nargs=4, metavar=("SOURCE", "SCRIPT", "MODEL", "WORKERS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)

    if args.e2e_child:
        source, script_path, model, workers = args.e2e_child
        result = end_to_end_child(
            Path(source), Path(script_path), model, int(workers), args.threads, args.e2e_batch_size
        )
        print(json.dumps(result))
        return 0

    if args.trim:
        store = ModelStore(get_settings().models_dir)
        print(f"load average {os.getloadavg()[0]:.2f}", flush=True)
        rows = trim_comparison(store, args.trim_english_clips, args.cascade_seed)
        print_trim_table(rows)
        if args.json:
            command = " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])
            args.json.write_text(json.dumps({"command": command, "trim": rows}, indent=2) + "\n", encoding="utf-8")
        return 0

    if args.cascade:
        store = ModelStore(get_settings().models_dir)
        print(f"load average {os.getloadavg()[0]:.2f}; {args.cascade_minutes} min per condition", flush=True)
        rows = cascade_comparison(
            store,
            args.cascade_minutes,
            args.cascade_snr,
            args.cascade_thresholds,
            args.cascade_whole_share,
            args.cascade_seed,
        )
        print_cascade_table(rows)
        if args.json:
            command = " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])
            args.json.write_text(json.dumps({"command": command, "cascade": rows}, indent=2) + "\n", encoding="utf-8")
        return 0

    default_matrix = 2.0 if args.quick else 3.0
    matrix_minutes = args.matrix_minutes if args.matrix_minutes is not None else default_matrix
    e2e_minutes = args.e2e_minutes if args.e2e_minutes is not None else (10.0 if args.quick else 60.0)
    modes = [("int8", "sequential"), ("float32", "sequential"), ("int8", "batched"), ("int8", "parallel")]
    if args.quick:
        modes = [("int8", "sequential"), ("float32", "sequential"), ("int8", "parallel")]
    if args.modes:
        modes = [(pair.split(":", 1)[0], pair.split(":", 1)[1]) for pair in args.modes]
    store = ModelStore(get_settings().models_dir)
    report: dict[str, Any] = {
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
        "machine": {"cpus": available_cpus(), "processor": platform.processor() or platform.machine()},
        "threads": args.threads,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    if matrix_minutes > 0:
        print(f"part 1: recognition on {matrix_minutes} min of speech, {args.threads} threads", flush=True)
        report["recognition"] = recognition_matrix(store, matrix_minutes, args.models, modes, args.threads, args.beams)
    if e2e_minutes > 0:
        print(f"part 2: {e2e_minutes} min end to end with {args.e2e_model}", flush=True)
        report["end_to_end"] = end_to_end(
            e2e_minutes, args.e2e_model, args.e2e_workers, args.threads, args.e2e_batch_size
        )
        print(json.dumps(report["end_to_end"], indent=2), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
