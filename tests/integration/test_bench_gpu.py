"""scripts/bench_gpu.py, the speed goal's one report, run in quick mode on the CPU: it names the
device and every model with the execution providers it runs on, has a positive figure for each
section, and a word error rate on espeak-ng speech that a working recogniser stays well under."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from medialens.errors import ConfigurationError
from medialens.settings import Settings

pytestmark = pytest.mark.integration

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
CPU = ["CPUExecutionProvider"]


@pytest.fixture(scope="module")
def bench_gpu(audio_samples: ModuleType) -> ModuleType:
    """The script as a module (``audio_samples`` first: it fails the test without espeak-ng and
    FFmpeg, which the speech section needs)."""
    sys.path.insert(0, str(SCRIPTS))
    import bench_gpu

    return bench_gpu


def test_cuda_is_refused_where_onnxruntime_has_none(bench_gpu: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench_gpu, "select_providers", lambda: list(CPU))
    assert bench_gpu.onnx_providers("cpu") == CPU
    assert bench_gpu.onnx_providers("auto") == CPU
    with pytest.raises(ConfigurationError, match="no CUDA"):
        bench_gpu.onnx_providers("cuda")


@pytest.mark.slow
def test_quick_run_on_cpu_reports_device_models_and_figures(
    bench_gpu: ModuleType, settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "bench-gpu.json"
    assert bench_gpu.main(["--quick", "--device", "cpu", "--json", str(out)]) == 0
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))

    device = report["device"]
    assert device["kind"] == "cpu" and device["name"].startswith("cpu, ") and device["speech_device"] == "cpu"
    assert device["onnx_providers_requested"] == CPU
    assert {"onnxruntime", "ctranslate2", "faster-whisper", "rapidocr"} <= set(device["versions"])
    assert "--quick" in report["command"] and report["quick"]

    models = report["models"]
    assert models["speech"]["version"].startswith(f"{settings.speech_model}@")
    assert models["speech"]["runtime"] == "ctranslate2 on cpu, int8"
    assert models["ocr"]["version"].startswith("rapidocr-ppocrv6-small@") and models["ocr"]["providers"] == CPU
    assert models["labels"]["version"].startswith(f"{settings.visual_label_model}@")
    assert models["labels"]["providers"] == CPU
    encoders = {version.split("@")[0]: entry for version, entry in models["embeddings"].items()}
    assert set(encoders) == {settings.text_embedding_model, settings.english_embedding_model}
    assert all(entry["providers"] == CPU for entry in encoders.values())

    speech = report["speech"]
    assert speech["audio_s"] > 10 and speech["reference_words"] > 20
    assert [row["batch_size"] for row in speech["rows"]] == list(report["sizes"]["speech_batches"])
    for row in speech["rows"]:
        assert row["x_realtime"] > 0 and row["words"] > 0
        # Clean espeak-ng speech: whisper-base measured ~10%; a broken run is near 100%.
        assert 0 <= row["wer"] < 0.35
    assert speech["best_x_realtime"] > 0 and speech["meets_target"] is False  # 200x is a GPU's figure

    ocr = report["ocr"]
    assert {row["mode"] for row in ocr["rows"]} == {"keyframes (text gate)", "every frame in full"}
    for row in ocr["rows"]:
        assert row["images_per_s"] > 0 and row["caption_word_recall"] >= 0.8

    labels = report["labels"]
    assert [row["batch_size"] for row in labels["rows"]] == [1, 16, 64]
    assert all(row["images_per_s"] > 0 for row in labels["rows"]) and labels["decode_and_resize_per_s"] > 0

    embeddings = report["embeddings"]
    measured = {(row["model"].split("@")[0], row["batch_size"]) for row in embeddings["rows"]}
    assert measured == {(name, batch) for name in encoders for batch in (1, 32, 128)}
    assert all(row["passages_per_s"] > 0 for row in embeddings["rows"])
    assert set(report["section_s"]) == {"speech", "ocr", "labels", "embeddings"}
