#!/usr/bin/env python3
"""Benchmarks the models on one device (a GPU when there is one): the figures of the speed goal.

    speech      multiples of real time of batched faster-whisper (BatchedInferencePipeline) over
                espeak-ng speech the script makes (scripts/sample_audio.py), the whole recording
                in one call at each batch size, and once in the pipeline's chunks; words
                recognised and the word error rate against the script
    OCR         keyframes per second over 720p keyframe-like JPEGs rendered here (captions on
                varied backgrounds), in the pipeline's batches of keyframes, with its text gate
                and without; caption word recall
    labels      images per second of the image labeller at batch sizes 1, 16, 64 (decode and
                resize included, as the pipeline runs it), and of the decode and resize alone
    embeddings  passages per second of each text encoder at batch sizes 1, 32, 128

Models and options are the settings' (MEDIALENS_* variables): what the pipeline runs. Devices
are chosen as the runtimes choose them: ``medialens.ml.asr.select_device`` for Whisper and
``medialens.ml.onnx.select_providers`` for onnxruntime; ``--device cpu`` keeps both on the CPU,
``--device cuda`` fails where either runtime sees no GPU. The report names the device, every
model's version and the execution providers its session actually uses.

    .venv/bin/python scripts/bench_gpu.py --quick --device cpu          # < 1 min on 2 cores
    .venv/bin/python scripts/bench_gpu.py --json bench-gpu.json         # GPU: 10 min of speech

Sizes default by device (GPU: 10 min of speech, batches 1/8/16/32; CPU: 1 min, batches 1/4/8).
Without espeak-ng on the GPU machine, make the speech elsewhere with ``--write-speech
speech.wav`` and pass ``--speech-audio speech.wav`` there (its script travels beside it as
speech.wav.json). Timings are wall-clock, best of ``--repeat`` for the ONNX models.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import platform
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from medialens.errors import ConfigurationError
from medialens.media.audio.chunking import AudioChunk, ChunkingParams, plan_chunks
from medialens.media.audio.decode import load_audio
from medialens.media.audio.samples import SAMPLE_RATE, FloatAudio
from medialens.media.audio.vad import detect_speech
from medialens.media.transcript import ChunkTranscript, Transcript, stitch
from medialens.ml.asr import FasterWhisperRecognizer, available_cpus, select_device, speech_batch_size
from medialens.ml.ocr import RapidOcrRecognizer
from medialens.ml.onnx import select_providers
from medialens.ml.store.store import ModelStore, store_for
from medialens.ml.text_embedding import OnnxTextEmbedder
from medialens.ml.visual_labels import OnnxImageLabeler, preprocess_image
from medialens.pipeline.video import KEYFRAMES_PER_BATCH
from medialens.settings import Settings, get_settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_embeddings import make_sentences  # a sibling script, via sys.path above

SECTIONS = ("speech", "ocr", "labels", "embeddings")
TARGET_X_REALTIME = 200.0  # the speed goal for speech on one GPU
SINGLE_TEXTS = 128  # passages embedded one at a time, at most
UNCAPPED_TOKENS = 1 << 17  # a padded-token cap no batch of 128 passages reaches
WIDTH, HEIGHT = 1280, 720
CUDA = "CUDAExecutionProvider"

# Sizes per run kind: "quick" (a smoke test, any device), "cpu" and "cuda" (the defaults there).
SIZES: dict[str, dict[str, Any]] = {
    "quick": {
        "speech_minutes": 0.33,
        "speech_batches": (1, 4),
        "ocr_images": 4,
        "label_images": 16,
        "label_batches": (1, 16, 64),
        "passages": 8,
        "embedding_batches": (1, 32, 128),
        "repeat": 1,
    },
    "cpu": {
        "speech_minutes": 1.0,
        "speech_batches": (1, 4, 8),
        "ocr_images": 16,
        "label_images": 64,
        "label_batches": (1, 16, 64),
        "passages": 32,
        "embedding_batches": (1, 32, 128),
        "repeat": 2,
    },
    "cuda": {
        "speech_minutes": 10.0,
        "speech_batches": (1, 8, 16, 32),
        "ocr_images": 128,
        "label_images": 256,
        "label_batches": (1, 16, 64),
        "passages": 512,
        "embedding_batches": (1, 32, 128),
        "repeat": 2,
    },
}


# --- the device ---------------------------------------------------------------------------------


def onnx_providers(device: str) -> list[str]:
    """The onnxruntime providers for ``device``: :func:`select_providers`'s choice, less CUDA on
    ``cpu``; on ``cuda`` a ConfigurationError where this onnxruntime build has no CUDA."""
    chosen = select_providers()
    if device == "cpu":
        return [provider for provider in chosen if provider != CUDA]
    if device == "cuda" and CUDA not in chosen:
        raise ConfigurationError(
            f"--device cuda: onnxruntime {ort.__version__} offers {ort.get_available_providers()}, no CUDA "
            "(the GPU image installs onnxruntime-gpu: containers/inference/Dockerfile)"
        )
    return chosen


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in ("onnxruntime", "onnxruntime-gpu", "ctranslate2", "faster-whisper", "rapidocr", "tokenizers", "av"):
        try:
            found[name] = package_version(name)
        except PackageNotFoundError:
            continue
    return found


def _processor() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpus() -> list[dict[str, Any]]:
    """Every NVIDIA GPU's name, memory and driver: NVML (nvidia-ml-py) if installed, else nvidia-smi."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - ImportError, or NVMLError: no bindings, driver or device
        return _gpus_from_smi()
    try:
        found = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            found.append(
                {
                    "index": index,
                    "name": name.decode() if isinstance(name, bytes) else str(name),
                    "memory_gib": round(memory.total / 1024**3, 1),
                    "memory_used_gib": round(memory.used / 1024**3, 1),
                }
            )
        driver = pynvml.nvmlSystemGetDriverVersion()
        for gpu in found:
            gpu["driver"] = driver.decode() if isinstance(driver, bytes) else str(driver)
        return found
    finally:
        pynvml.nvmlShutdown()


def _gpus_from_smi() -> list[dict[str, Any]]:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    query = ["--query-gpu=index,name,memory.total,memory.used,driver_version", "--format=csv,noheader,nounits"]
    try:
        listed = subprocess.run([smi, *query], check=True, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    found = []
    for line in listed.strip().splitlines():
        index, name, total, used, driver = (part.strip() for part in line.split(","))
        found.append(
            {
                "index": int(index),
                "name": name,
                "memory_gib": round(float(total) / 1024, 1),
                "memory_used_gib": round(float(used) / 1024, 1),
                "driver": driver,
            }
        )
    return found


def describe_device(requested: str, speech_device: str | None, providers: list[str] | None) -> dict[str, Any]:
    """What the models run on: ``name`` is the GPU's (with its memory) or ``cpu, N cores``."""
    import ctranslate2  # type: ignore[import-untyped]

    gpus = _gpus()
    on_gpu = speech_device == "cuda" or (providers is not None and CUDA in providers)
    if on_gpu and gpus:
        name = f"{gpus[0]['name']}, {gpus[0]['memory_gib']} GiB"
    elif on_gpu:
        name = "cuda (no NVML or nvidia-smi to name it)"
    else:
        name = f"cpu, {available_cpus()} cores"
    return {
        "requested": requested,
        "name": name,
        "kind": "cuda" if on_gpu else "cpu",
        "speech_device": speech_device,
        "onnx_providers_requested": providers,
        "onnx_providers_available": ort.get_available_providers(),
        "ctranslate2_cuda_devices": ctranslate2.get_cuda_device_count(),
        "ctranslate2_compute_types": sorted(ctranslate2.get_supported_compute_types(speech_device or "cpu")),
        "gpus": gpus,
        "cpu": f"{_processor()}, {available_cpus()} usable of {os.cpu_count()} cores",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "versions": _versions(),
    }


# --- timing -------------------------------------------------------------------------------------


def _best(function: Callable[[], object], repeat: int) -> float:
    """The fastest of ``repeat`` runs (on a shared machine, the least disturbed)."""
    best = float("inf")
    for _ in range(max(1, repeat)):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def _loaded(model: Any) -> float:
    """Loads ``model`` (an InferenceModel); the seconds it took."""
    started = time.perf_counter()
    model.load()
    return round(time.perf_counter() - started, 2)


# --- speech -------------------------------------------------------------------------------------


def write_speech(path: Path, minutes: float, seed: int) -> list[str]:
    """``minutes`` of espeak-ng speech at ``path`` (.wav, .flac, .mp3, .m4a), its sentences in
    order beside it (``path`` + .json); returns them."""
    # Imported here: the sample scripts need the local extra (fpdf2), which the GPU image lacks.
    from sample_audio import synthesise_speech

    sentences = [spoken.text for spoken in synthesise_speech(path, minutes, seed=seed)]
    _script_path(path).write_text(json.dumps(sentences), encoding="utf-8")
    return sentences


def _script_path(audio: Path) -> Path:
    return audio.with_name(audio.name + ".json")


def _tokens(text: str) -> list[str]:
    """Words as scripts/bench_speech.py compares them: case-folded, punctuation dropped."""
    return [t for t in (re.sub(r"[^\w']", "", w.casefold()) for w in text.split()) if t]


def word_error_rate(sentences: Sequence[str], transcript: Transcript) -> float:
    """Substitutions, deletions and insertions over the script's words (jiwer, as the narration
    check counts them), the whole recording aligned at once."""
    import jiwer

    reference = _tokens(" ".join(sentences))
    hypothesis = [token for word in transcript.words for token in _tokens(word.text)]
    if not reference:
        return 0.0 if not hypothesis else 1.0
    if not hypothesis:
        return 1.0
    output = jiwer.process_words(" ".join(reference), " ".join(hypothesis))
    return (output.substitutions + output.deletions + output.insertions) / len(reference)


def _speech(args: argparse.Namespace, minutes: float, work: Path) -> tuple[FloatAudio, list[str], str]:
    if args.speech_audio is not None:
        path = args.speech_audio
        script = [str(sentence) for sentence in json.loads(_script_path(path).read_text(encoding="utf-8"))]
        source = f"{path.name} (given)"
    else:
        path = work / "speech.wav"
        script = write_speech(path, minutes, args.seed)
        source = f"espeak-ng, {minutes:g} min, seed {args.seed}"
    return load_audio(path, max_duration_s=None), script, source


def bench_speech(
    settings: Settings,
    store: ModelStore,
    model_name: str,
    device: str,
    audio: FloatAudio,
    script: list[str],
    batch_sizes: Sequence[int],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per batch size, the whole recording in one call; then the pipeline's chunks at the
    settings' batch size, one after another (one worker's view). Returns (model, results)."""
    duration = len(audio) / SAMPLE_RATE
    whole = AudioChunk(index=0, start=0.0, end=duration, keep_start=0.0, keep_end=duration)
    reference_words = len(_tokens(" ".join(script)))

    def recognizer(batch_size: int) -> FasterWhisperRecognizer:
        return FasterWhisperRecognizer(
            store,
            model_name,
            device=device,
            compute_type=settings.speech_compute_type,
            cpu_threads=settings.speech_cpu_threads,
            beam_size=settings.speech_beam_size,
            batch_size=batch_size,
        )

    rows: list[dict[str, Any]] = []
    model: dict[str, Any] = {}

    def measure(mode: str, batch_size: int, chunks: list[AudioChunk]) -> None:
        asr = recognizer(batch_size)
        load_s = _loaded(asr)
        model.update(
            {
                "version": asr.version,
                "runtime": f"ctranslate2 on {asr.device}, {asr.compute_type}",
                "beam_size": asr.beam_size,
                "load_s": model.get("load_s", load_s),  # the first load: the one a worker pays
            }
        )
        asr.transcribe(audio[: 5 * SAMPLE_RATE], language="en")  # warm-up: allocations, kernels

        def one(chunk: AudioChunk) -> ChunkTranscript:
            samples = audio[round(chunk.start * SAMPLE_RATE) : round(chunk.end * SAMPLE_RATE)]
            return asr.transcribe(samples, offset_s=chunk.start, language="en")

        started = time.perf_counter()
        parts = [one(chunk) for chunk in chunks]
        wall = time.perf_counter() - started
        transcript = stitch(parts, chunks)
        row = {
            "mode": mode,
            "batch_size": batch_size,
            "calls": len(chunks),
            "wall_s": round(wall, 2),
            "x_realtime": round(duration / wall, 1),
            "words": len(transcript.words),
            "wer": round(word_error_rate(script, transcript), 3),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)

    for batch_size in batch_sizes:
        measure("whole recording", batch_size, [whole])
        gc.collect()  # that batch size's model goes before the next one loads onto the device
    chunk_s = settings.speech_chunk_seconds
    chunks = plan_chunks(duration, detect_speech([audio]), ChunkingParams(target_s=chunk_s))
    if len(chunks) > 1:
        measure(f"pipeline chunks ({chunk_s:g} s)", speech_batch_size(settings), chunks)
    best = max(rows, key=lambda r: r["x_realtime"])
    results = {
        "audio_s": round(duration, 1),
        "reference_words": reference_words,
        "language": "en",
        "rows": rows,
        "best_x_realtime": best["x_realtime"],
        "best_batch_size": best["batch_size"],
        "target_x_realtime": TARGET_X_REALTIME,
        "meets_target": best["x_realtime"] >= TARGET_X_REALTIME,
        "wer": best["wer"],
    }
    return model, results


# --- keyframes for OCR and labels ----------------------------------------------------------------

_WORDS = (
    "QUARTERLY", "RESULTS", "REVENUE", "GREW", "PERCENT", "WAREHOUSE", "LYON", "HIRING", "ENGINEERS",
    "CUSTOMER", "SATISFACTION", "THANK", "YOU", "WATCHING", "ROBOTS", "DELIVERY", "SCHEDULE", "BATTERY",
    "SAFETY", "BRIEFING", "NORTH", "ENTRANCE", "KITCHEN", "PRODUCT", "LAUNCH", "MARKET", "SHARE", "EUROPE",
    "MORNING", "NEWS", "WEATHER", "TRAFFIC", "UPDATE", "LIVE", "REPORT",
)  # fmt: skip


@functools.lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans Bold (fontconfig, as the sample media use), else Pillow's own font."""
    try:
        from sample_video import font_path

        return ImageFont.truetype(font_path(), size)
    except (ImportError, OSError, RuntimeError, subprocess.SubprocessError):
        return ImageFont.load_default(size)


def _background(rng: np.random.Generator, kind: int) -> Image.Image:
    """A 720p background: a gradient, smooth noise (a photo's blur), stripes or shapes."""
    colour = rng.integers(0, 256, size=(2, 3)).astype(np.float32)
    if kind == 0:  # a diagonal gradient
        ramp = (np.add.outer(np.arange(HEIGHT), np.arange(WIDTH)) / (HEIGHT + WIDTH))[..., None]
        pixels = colour[0] * (1 - ramp) + colour[1] * ramp
    elif kind == 1:  # blurred noise, like an out-of-focus scene
        small = rng.integers(0, 256, size=(HEIGHT // 40, WIDTH // 40, 3)).astype(np.uint8)
        image = Image.fromarray(small).resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC)
        return image.filter(ImageFilter.GaussianBlur(6))
    elif kind == 2:  # stripes
        period = int(rng.integers(24, 160))
        mask = ((np.arange(WIDTH) // period) % 2).astype(np.float32)[None, :, None]
        pixels = np.broadcast_to(colour[0] * (1 - mask) + colour[1] * mask, (HEIGHT, WIDTH, 3))
    else:  # a plain slide with shapes on it
        image = Image.new("RGB", (WIDTH, HEIGHT), tuple(int(c) for c in colour[0]))
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            x, y = int(rng.integers(0, WIDTH)), int(rng.integers(0, HEIGHT))
            w, h = int(rng.integers(60, 400)), int(rng.integers(60, 300))
            fill = tuple(int(c) for c in rng.integers(0, 256, size=3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x, y, x + w, y + h), fill=fill)
        return image
    return Image.fromarray(np.ascontiguousarray(pixels).clip(0, 255).astype(np.uint8))


def render_keyframes(count: int, seed: int) -> tuple[list[bytes], list[str]]:
    """``count`` 720p JPEG keyframes and the caption of each ("" on the quarter without text)."""
    rng = np.random.default_rng(seed)
    words = random.Random(seed)
    frames, captions = [], []
    for number in range(count):
        image = _background(rng, number % 4)
        caption = ""
        if number % 4 != 3:
            caption = " ".join(words.sample(_WORDS, words.randint(2, 4)))
            font = _font(int(rng.integers(36, 64)))
            draw = ImageDraw.Draw(image)
            left, top, right, bottom = draw.textbbox((0, 0), caption, font=font)
            x = (WIDTH - (right - left)) // 2
            y = (HEIGHT - 140, 60, HEIGHT // 2)[number % 3]
            if number % 2:  # a lower third: white on a dark box
                draw.rectangle((x - 14, y - 14, x + right - left + 14, y + bottom - top + 14), fill=(16, 16, 16))
                draw.text((x - left, y - top), caption, font=font, fill=(255, 255, 255))
            else:  # text straight on the picture, outlined
                draw.text((x - left, y - top), caption, font=font, fill=(255, 255, 255), stroke_width=3, stroke_fill=0)
        buffer = BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        frames.append(buffer.getvalue())
        captions.append(caption)
    return frames, captions


def bench_ocr(
    settings: Settings, providers: list[str], frames: list[bytes], captions: list[str], repeat: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Keyframes per second as the pipeline reads them: ``KEYFRAMES_PER_BATCH`` a call, with the
    keyframe text gate (what video keyframes get) and without (every frame read in full)."""
    truth = {word for caption in captions for word in caption.split()}
    model: dict[str, Any] = {}
    rows = []
    for label, gate in (("keyframes (text gate)", settings.ocr_keyframe_text_gate), ("every frame in full", None)):
        recognizer = RapidOcrRecognizer(
            min_confidence=settings.ocr_min_confidence,
            det_limit_side_len=settings.ocr_det_limit_side_len,
            det_batch_size=settings.ocr_batch_size,
            text_gate_side=gate,
            providers=providers,
        )
        load_s = _loaded(recognizer)
        if not model:
            model = {
                "version": recognizer.version,
                "providers": recognizer.providers,
                "det_batch_size": recognizer.det_batch_size,
                "rec_batch_size": recognizer.rec_batch_size,
                "keyframes_per_call": KEYFRAMES_PER_BATCH,
                "files": recognizer.model_files,
                "load_s": load_s,
            }

        def read(r: RapidOcrRecognizer = recognizer) -> list[str]:
            found: list[str] = []
            for begin in range(0, len(frames), KEYFRAMES_PER_BATCH):
                for lines in r.recognize(frames[begin : begin + KEYFRAMES_PER_BATCH]):
                    found += [word for line in lines for word in line.text.upper().split()]
            return found

        words = read()  # warm-up over every shape the measured pass will see
        seconds = _best(read, repeat)
        rows.append(
            {
                "mode": label,
                "version": recognizer.version,
                "images": len(frames),
                "images_per_s": round(len(frames) / seconds, 2),
                "ms_per_image": round(1000 * seconds / len(frames), 1),
                "caption_word_recall": round(len(set(words) & truth) / max(1, len(truth)), 3),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return model, {"image_size": f"{WIDTH}x{HEIGHT}", "with_text": sum(map(bool, captions)), "rows": rows}


def bench_labels(
    settings: Settings,
    store: ModelStore,
    providers: list[str],
    frames: list[bytes],
    batch_sizes: Sequence[int],
    repeat: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    name = settings.visual_label_model
    if not name:
        raise ConfigurationError("visual labels are off (MEDIALENS_VISUAL_LABEL_MODEL is empty)")
    labeler = OnnxImageLabeler(store, name, settings.visual_label_quantization, providers=providers)
    load_s = _loaded(labeler)
    model = {"version": labeler.version, "providers": labeler.providers, "load_s": load_s}
    rows = []
    for batch_size in batch_sizes:
        labeler.probabilities(frames[:batch_size], batch_size=batch_size)  # warm-up at this shape
        seconds = _best(functools.partial(labeler.probabilities, frames, batch_size=batch_size), repeat)
        rows.append(
            {
                "batch_size": batch_size,
                "effective_batch": min(batch_size, len(frames)),
                "images_per_s": round(len(frames) / seconds, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    # The CPU's share of it (JPEG decode, crop, bicubic resize), whatever device runs the network.
    config = labeler.preprocess
    seconds = _best(lambda: [preprocess_image(frame, config) for frame in frames], repeat)
    results = {
        "images": len(frames),
        "image_size": f"{WIDTH}x{HEIGHT}",
        "rows": rows,
        "decode_and_resize_per_s": round(len(frames) / seconds, 1),
    }
    return model, results


def make_passages(count: int, words_per_passage: int, seed: int) -> list[str]:
    """``count`` passages of ``words_per_passage`` words (the pipeline's passage length), cut from
    bench_embeddings' sentences."""
    stream: list[str] = []
    needed = count * words_per_passage
    batch = 0
    while len(stream) < needed:
        stream += " ".join(make_sentences(256, seed + batch)).split()
        batch += 1
    return [" ".join(stream[i * words_per_passage : (i + 1) * words_per_passage]) for i in range(count)]


def bench_embeddings(
    settings: Settings,
    store: ModelStore,
    providers: list[str],
    passages: list[str],
    batch_sizes: Sequence[int],
    quantizations: Sequence[str],
    token_caps: Sequence[int],
    repeat: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each encoder the settings name, per quantization and padded-token cap per run (0: the
    embedder's default, what the pipeline runs). One text at a time runs over at most
    ``SINGLE_TEXTS`` passages: the rate per text is the point, and it is the slow case."""
    names = [settings.text_embedding_model]
    if settings.english_embedding_model and settings.english_embedding_model not in names:
        names.append(settings.english_embedding_model)
    models: dict[str, Any] = {}
    rows = []
    for name in names:
        for quantization in quantizations:
            embedder = OnnxTextEmbedder(store, name, quantization, providers=providers)
            load_s = _loaded(embedder)
            models[embedder.version] = {"providers": embedder.providers, "load_s": load_s}
            default_cap = embedder._max_batch_tokens
            for cap in token_caps:
                # The cap is only read when batches are formed: one loaded model serves every cap.
                embedder._max_batch_tokens = cap or default_cap
                for batch_size in batch_sizes:
                    if cap and batch_size == 1:
                        continue  # one text a run: no cap applies
                    texts = passages[:SINGLE_TEXTS] if batch_size == 1 else passages
                    embedder.embed(texts[:batch_size], batch_size=batch_size)  # warm-up
                    seconds = _best(functools.partial(embedder.embed, texts, batch_size=batch_size), repeat)
                    rows.append(
                        {
                            "model": embedder.version,
                            "batch_size": batch_size,
                            "max_batch_tokens": embedder._max_batch_tokens,
                            "texts_per_run": _texts_per_run(embedder, texts, batch_size),
                            "passages": len(texts),
                            "passages_per_s": round(len(texts) / seconds, 1),
                        }
                    )
                    print(json.dumps(rows[-1]), flush=True)
            del embedder
            gc.collect()
    words = [len(p.split()) for p in passages]
    return models, {"passages": len(passages), "words_per_passage": round(sum(words) / len(words)), "rows": rows}


def _texts_per_run(embedder: OnnxTextEmbedder, texts: list[str], batch_size: int) -> float:
    """Texts per session run: fewer than ``batch_size`` where the embedder's padded-token cap per
    batch (``max_batch_tokens``) splits batches of long passages."""
    token_ids = embedder._token_ids
    assert token_ids is not None
    lengths = [len(ids) for ids in token_ids(texts)]
    runs = sum(1 for _ in embedder._batches(lengths, batch_size))
    return round(len(texts) / runs, 1)


# --- the report ---------------------------------------------------------------------------------


def _table(title: str, headers: list[str], rows: list[list[str]]) -> None:
    print(f"\n{title}")
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
        for row in [headers, *rows]:
            print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
    else:
        table = Table(*headers)
        for row in rows:
            table.add_row(*row)
        # Wide enough for every cell: model versions are never cut short, piped or not.
        needed = sum(max(len(str(r[i])) for r in [headers, *rows]) + 3 for i in range(len(headers))) + 1
        Console(width=max(needed, shutil.get_terminal_size().columns)).print(table)


def print_report(report: dict[str, Any]) -> None:
    device = report["device"]
    print(f"\ndevice: {device['name']} (asked: {device['requested']}); cpu: {device['cpu']}")
    versions = ", ".join(f"{k} {v}" for k, v in device["versions"].items())
    print(f"software: {versions}; onnxruntime providers available: {', '.join(device['onnx_providers_available'])}")
    models = report["models"]
    model_rows = []
    for section, model in models.items():
        if section == "embeddings":
            for version, entry in model.items():
                model_rows.append([section, version, ", ".join(entry["providers"]), f"{entry['load_s']:.2f}"])
        else:
            runtime = model.get("runtime") or ", ".join(model.get("providers", []))
            model_rows.append([section, model["version"], runtime, f"{model['load_s']:.2f}"])
    _table("models", ["section", "version", "runtime / active providers", "load s"], model_rows)
    if report["cpu_fallbacks"]:
        print(f"WARNING: asked for CUDA, running on the CPU: {', '.join(report['cpu_fallbacks'])}")
    if "speech" in report:
        speech = report["speech"]
        _table(
            f"speech: {speech['audio_s']:.0f} s of {speech['source']}, {speech['reference_words']} words spoken",
            ["mode", "batch", "calls", "wall s", "x real time", "words", "WER"],
            [
                [r["mode"], str(r["batch_size"] or "0 (none)"), str(r["calls"]), f"{r['wall_s']:.2f}",
                 f"{r['x_realtime']:.1f}", str(r["words"]), f"{r['wer']:.1%}"]
                for r in speech["rows"]
            ],
        )  # fmt: skip
        verdict = "met" if speech["meets_target"] else "not met"
        best = f"best {speech['best_x_realtime']}x at batch {speech['best_batch_size']}"
        print(f"speech target >= {speech['target_x_realtime']:g}x real time: {verdict} ({best})")
    if "ocr" in report:
        ocr = report["ocr"]
        _table(
            f"OCR: {ocr['rows'][0]['images']} keyframes {ocr['image_size']} ({ocr['with_text']} with text), "
            f"{models['ocr']['keyframes_per_call']} a call",
            ["mode", "images/s", "ms/image", "caption word recall"],
            [[r["mode"], f"{r['images_per_s']:.1f}", f"{r['ms_per_image']:.1f}", f"{r['caption_word_recall']:.3f}"]
             for r in ocr["rows"]],
        )  # fmt: skip
    if "labels" in report:
        labels = report["labels"]
        _table(
            f"labels: {labels['images']} JPEG keyframes {labels['image_size']}, decode and resize included "
            f"(alone: {labels['decode_and_resize_per_s']:.1f}/s)",
            ["batch", "images a run", "images/s"],
            [[str(r["batch_size"]), str(r["effective_batch"]), f"{r['images_per_s']:.1f}"] for r in labels["rows"]],
        )
    if "embeddings" in report:
        embeddings = report["embeddings"]
        _table(
            f"embeddings: {embeddings['passages']} passages of {embeddings['words_per_passage']} words",
            ["model", "batch", "token cap", "texts per run", "passages", "passages/s"],
            [[r["model"], str(r["batch_size"]), str(r["max_batch_tokens"]), f"{r['texts_per_run']:.1f}",
              str(r["passages"]), f"{r['passages_per_s']:.1f}"]
             for r in embeddings["rows"]],
        )  # fmt: skip
    print(f"section seconds: {json.dumps(report['section_s'])}")
    print(f"reproduce: {report['command']}")


# --- main ---------------------------------------------------------------------------------------


def _ints(text: str) -> tuple[int, ...]:
    values = tuple(int(part) for part in text.split(",") if part.strip())
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected comma-separated non-negative integers, got {text!r}")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test (< 1 min on 2 CPU cores)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"sections to run, of {','.join(SECTIONS)}")
    parser.add_argument("--speech-minutes", type=float, help="speech to synthesise (GPU 10, CPU 1, quick 0.33)")
    parser.add_argument("--speech-batches", type=_ints, help="batch sizes, e.g. 1,8,16,32 (0: no batching)")
    parser.add_argument("--speech-model", help="a Whisper model of the store (default: the settings' speech_model)")
    parser.add_argument("--speech-audio", type=Path, help="a recording made by --write-speech, instead of espeak-ng")
    parser.add_argument("--write-speech", type=Path, metavar="PATH", help="only write the speech (and PATH.json)")
    parser.add_argument("--ocr-images", type=int, help="keyframes to read (GPU 128, CPU 16, quick 4)")
    parser.add_argument("--label-images", type=int, help="keyframes to label (GPU 256, CPU 64, quick 16)")
    parser.add_argument("--label-batches", type=_ints)
    parser.add_argument("--passages", type=int, help="passages to embed (GPU 512, CPU 32, quick 8)")
    parser.add_argument("--embedding-batches", type=_ints)
    parser.add_argument(
        "--embedding-quantizations",
        help="comma-separated (default: the settings' text_embedding_quantization, and fp32 too on a GPU)",
    )
    parser.add_argument(
        "--embedding-max-batch-tokens",
        type=_ints,
        help=f"padded-token caps per run to try (0: the embedder's default; GPU default 0,{UNCAPPED_TOKENS})",
    )
    parser.add_argument("--repeat", type=int, help="runs per ONNX measurement, the best counts (quick 1, else 2)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write every figure here")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """Every section asked for; the report (also printed as tables)."""
    settings = get_settings()
    store = store_for(settings)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown sections {sorted(unknown)}: choose from {', '.join(SECTIONS)}")
    speech_device = select_device(args.device) if "speech" in sections else None
    providers = onnx_providers(args.device) if set(sections) - {"speech"} else None
    device = describe_device(args.device, speech_device, providers)
    sizes = dict(SIZES["quick" if args.quick else device["kind"]])
    for key in sizes:
        if getattr(args, key) is not None:
            sizes[key] = getattr(args, key)
    repeat = sizes["repeat"]
    quantizations = [settings.text_embedding_quantization]
    if args.embedding_quantizations:
        quantizations = [q.strip() for q in args.embedding_quantizations.split(",") if q.strip()]
    elif device["kind"] == "cuda" and "fp32" not in quantizations:
        quantizations.append("fp32")  # int8's integer kernels are CPU ones: see what the GPU does with fp32

    token_caps = args.embedding_max_batch_tokens or ((0, UNCAPPED_TOKENS) if device["kind"] == "cuda" else (0,))

    report: dict[str, Any] = {"command": command, "quick": args.quick, "device": device, "sizes": sizes, "models": {}}
    timings: dict[str, float] = {}
    report["section_s"] = timings
    print(f"device: {device['name']}; sizes: {json.dumps(sizes)}", flush=True)
    if "speech" in sections:
        assert speech_device is not None
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
            audio, script, source = _speech(args, sizes["speech_minutes"], Path(tmp))
        print(f"speech: {len(audio) / SAMPLE_RATE:.0f} s of {source}", flush=True)
        speech_model = args.speech_model or settings.speech_model
        model, results = bench_speech(
            settings, store, speech_model, speech_device, audio, script, sizes["speech_batches"]
        )
        report["models"]["speech"] = model
        report["speech"] = {"source": source, **results}
        timings["speech"] = round(time.perf_counter() - started, 1)
    if providers is not None and {"ocr", "labels"} & set(sections):
        wanted = {"ocr": sizes["ocr_images"], "labels": sizes["label_images"]}
        count = max(n for section, n in wanted.items() if section in sections)
        frames, captions = render_keyframes(count, args.seed)
        if "ocr" in sections:
            started, n = time.perf_counter(), sizes["ocr_images"]
            model, results = bench_ocr(settings, providers, frames[:n], captions[:n], repeat)
            report["models"]["ocr"], report["ocr"] = model, results
            timings["ocr"] = round(time.perf_counter() - started, 1)
        if "labels" in sections:
            started, n = time.perf_counter(), sizes["label_images"]
            model, results = bench_labels(settings, store, providers, frames[:n], sizes["label_batches"], repeat)
            report["models"]["labels"], report["labels"] = model, results
            timings["labels"] = round(time.perf_counter() - started, 1)
    if providers is not None and "embeddings" in sections:
        started = time.perf_counter()
        passages = make_passages(sizes["passages"], settings.passage_words, args.seed)
        model, results = bench_embeddings(
            settings, store, providers, passages, sizes["embedding_batches"], quantizations, token_caps, repeat
        )
        report["models"]["embeddings"], report["embeddings"] = model, results
        timings["embeddings"] = round(time.perf_counter() - started, 1)
    report["cpu_fallbacks"] = _cpu_fallbacks(report) if providers is not None and CUDA in providers else []
    return report


def _cpu_fallbacks(report: dict[str, Any]) -> list[str]:
    """The ONNX models asked to run with CUDA whose sessions run without it (onnxruntime falls
    back to the CPU, with only a warning, where the CUDA or cuDNN libraries fail to load)."""
    models = report["models"]
    listed = [(models[s]["version"], models[s]["providers"]) for s in ("ocr", "labels") if s in models]
    listed += [(version, entry["providers"]) for version, entry in models.get("embeddings", {}).items()]
    return [version for version, providers in listed if CUDA not in providers]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    shown = sys.argv[1:] if argv is None else argv
    command = shlex.join([".venv/bin/python", "scripts/bench_gpu.py", *shown])
    if args.write_speech is not None:
        minutes = args.speech_minutes or SIZES["cuda"]["speech_minutes"]
        script = write_speech(args.write_speech, minutes, args.seed)
        print(f"wrote {args.write_speech} and {_script_path(args.write_speech).name}: {len(script)} sentences")
        return 0
    started = time.perf_counter()
    report = run(args, command)
    report["wall_s"] = round(time.perf_counter() - started, 1)
    print_report(report)
    print(f"total {report['wall_s']} s")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
