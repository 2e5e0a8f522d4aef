#!/usr/bin/env python3
"""Benchmarks what is shown and heard, on CPU:

    labels     keyframes/s of the image labeller, fp32 vs int8, one image per run vs batches of 8,
               with the decode and resize counted and without; int8's agreement with fp32
               (same top class, top-5 overlap) on photos with known content
    per minute the wall time labels add per media minute of a 720p test video (its kept
               keyframes), beside the OCR of the same keyframes; sound classes per media minute
    vectors    label text vs ConSE: recall@1/@3 and MRR of scripts/visual_questions.json over the
               test photos (scripts/eval_visual.py)

Photos: the darknet photos `make test-photos` fetches, scikit-image's and matplotlib's samples.

    .venv/bin/python scripts/bench_labels.py [--seconds 60] [--json bench-labels.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from PIL import Image

from medialens.media.audio.samples import SAMPLE_RATE
from medialens.media.shots import VideoOptions, analyze_video
from medialens.ml.ocr import get_text_recognizer
from medialens.ml.sound_events import get_sound_event_detector
from medialens.ml.store.store import ModelStore
from medialens.ml.visual_labels import OnnxImageLabeler, preprocess_image
from medialens.settings import get_settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_vision import make_video  # sibling scripts, via sys.path above
from eval_visual import compare, images_in, print_rows
from sample_music import music

ROOT = Path(__file__).resolve().parents[1]
SCIKIT_PHOTOS = {
    "astronaut.png": "astronaut",
    "chelsea.png": "chelsea",
    "coffee.png": "coffee",
    "rocket.jpg": "rocket",
}


def photo_folder(target: Path) -> Path:
    """The test photos in one folder, under the names scripts/visual_questions.json uses."""
    from skimage import data

    target.mkdir(parents=True, exist_ok=True)
    darknet = Path(os.environ.get("MEDIALENS_TEST_PHOTOS", ROOT / ".test-photos"))
    for photo in darknet.glob("*.jpg"):
        (target / photo.name).write_bytes(photo.read_bytes())
    for name, loader in SCIKIT_PHOTOS.items():
        Image.fromarray(getattr(data, loader)()).convert("RGB").save(target / name)
    left, _, _ = data.stereo_motorcycle()
    Image.fromarray(left).save(target / "motorcycle_left.png")
    sample = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    (target / "grace_hopper.jpg").write_bytes(sample.read_bytes())
    return target


def _best(function: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def bench_labels(photos: list[bytes], frames: int, threads: int, repeat: int) -> dict[str, Any]:
    settings = get_settings()
    store = ModelStore(settings.models_dir)
    labelers = {
        quant: OnnxImageLabeler(store, "efficientnet-lite0", quant, intra_op_threads=threads)
        for quant in ("fp32", "int8")
    }
    images = [photos[i % len(photos)] for i in range(frames)]
    result: dict[str, Any] = {"frames": frames, "threads": threads}
    for quant, labeler in labelers.items():
        labeler.load()
        for batch in (1, 8):
            seconds = _best(lambda b=batch, lab=labeler: lab.probabilities(images, batch_size=b), repeat)
            result[f"{quant}_batch{batch}_per_s"] = round(frames / seconds, 1)
    # The share of that which is decoding and resizing (the same for both builds).
    config = labelers["fp32"].preprocess
    seconds = _best(lambda: [preprocess_image(image, config) for image in images], repeat)
    result["decode_and_resize_per_s"] = round(frames / seconds, 1)
    fp32, int8 = (labelers[q].classify(photos, top_k=5) for q in ("fp32", "int8"))
    same = sum(a[0].class_index == b[0].class_index for a, b in zip(fp32, int8, strict=True))
    result["int8_same_top1"] = f"{same}/{len(photos)}"
    overlap = [len({x.class_index for x in a} & {x.class_index for x in b}) for a, b in zip(fp32, int8, strict=True)]
    result["int8_top5_overlap_mean"] = round(sum(overlap) / len(overlap), 2)
    return result


def bench_per_minute(seconds: float, work: Path, repeat: int) -> dict[str, Any]:
    settings = get_settings()
    video = work / "bench.mp4"
    make_video(video, seconds)
    analysis = analyze_video(video, VideoOptions.from_settings(settings))
    keyframes = [keyframe.jpeg for keyframe in analysis.keyframes]
    labeler = OnnxImageLabeler(ModelStore(settings.models_dir), "efficientnet-lite0", "fp32")
    labeler.load()
    label_s = _best(lambda: labeler.classify(keyframes, top_k=10), repeat)
    recognizer = get_text_recognizer(settings)
    ocr_s = _best(lambda: recognizer.recognize(keyframes), 1)
    minutes = seconds / 60
    audio_minutes = 5.0
    track = np.concatenate([music(60.0, seed) for seed in range(int(audio_minutes))])
    detector = get_sound_event_detector(settings)
    detector.load()
    sound_s = _best(lambda: detector.detect(track), repeat)
    return {
        "video_seconds": seconds,
        "keyframes": len(keyframes),
        "labels_s_per_media_minute": round(label_s / minutes, 3),
        "ocr_s_per_media_minute": round(ocr_s / minutes, 3),
        "sound_classes_s_per_media_minute": round(sound_s / audio_minutes, 3),
        "sound_audio_seconds": round(len(track) / SAMPLE_RATE, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the 720p test video")
    parser.add_argument("--frames", type=int, default=64, help="keyframes per labelling measurement")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: one per core)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement (the best is reported)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    command = shlex.join([sys.executable, *sys.argv]) if argv is None else "bench_labels.main"
    report: dict[str, Any] = {"command": command, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs"}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        folder = photo_folder(work / "photos")
        photos = [path.read_bytes() for path in images_in(folder)]
        report["labels"] = bench_labels(photos, args.frames, args.threads, args.repeat)
        print(json.dumps(report["labels"], indent=2))
        report["per_minute"] = bench_per_minute(args.seconds, work, args.repeat)
        print(json.dumps(report["per_minute"], indent=2))
        questions = json.loads((ROOT / "scripts" / "visual_questions.json").read_text(encoding="utf-8"))
        rows = compare(
            images_in(folder),
            questions,
            ["multilingual-e5-small", "all-minilm-l6-v2"],
            conse_k=[5, 10],
            label_counts=[3, 5, 8],
        )
        report["vectors"] = rows
        print_rows(rows)
    print(f"\n{command}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
