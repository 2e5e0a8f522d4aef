"""One definition of every metric: the code emits only catalogue names, and an operations report
publishes the report-level ones with the values it holds."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

import medialens
from medialens.domain.assets import Asset, AssetStatus, MediaType, SourceObject, StageTiming, utcnow
from medialens.domain.quality import QualitySample, Signal
from medialens.insight.metrics import METRICS, all_names, report_metrics, spec_for
from medialens.insight.report import build_report

pytestmark = pytest.mark.unit

PACKAGE = Path(medialens.__file__).resolve().parent
# count(metrics, "Name"), count(metrics, f"Family_{...}"), add_metric(name="Name"), single_metric(name="Name")
EMITTED = re.compile(
    r'(?:count\(\s*metrics,\s*|emit\(\s*|(?:add_metric|single_metric)\(\s*name=)f?"([A-Za-z]+_?)(\{|")'
)


def test_every_metric_the_code_emits_is_in_the_catalogue() -> None:
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for name, after in EMITTED.findall(path.read_text(encoding="utf-8")):
            found.add(name + ("{" if after == "{" else ""))
    assert found, "the pattern found no emitter: it no longer matches the code"
    families = {spec.name.split("{")[0] + "{" for spec in METRICS if "{" in spec.name}
    singles = {spec.name for spec in METRICS if "{" not in spec.name}
    assert found - families - singles == set()
    assert {"Admission_{", "Step_{", "Search_{", "StageLatency", "SearchLatency", "DeadLetteredMessages"} <= found


def test_families_expand_to_their_closed_set() -> None:
    assert "Admission_started" in all_names() and "Step_probe" in all_names() and "Search_hybrid" in all_names()
    assert spec_for("Step_probe").name == "Step_{step}"
    with pytest.raises(KeyError):
        spec_for("NoSuchMetric")


def test_a_report_publishes_drift_errors_confidence_throughput_and_cost() -> None:
    start = utcnow() - timedelta(minutes=30)
    assets = []
    for n in range(4):
        asset = Asset(
            asset_id=f"a{n:023d}",
            source=SourceObject(bucket="drop", key=f"incoming/{n}.wav", etag="e", size=1000),
            pipeline_version="1",
            media_type=MediaType.AUDIO,
            status=AssetStatus.FAILED if n == 3 else AssetStatus.SUCCEEDED,
            stage="transcribe_chunk" if n == 3 else None,
            metadata={"details": {"duration_s": 60.0}},
            created_at=start + timedelta(minutes=n),
            updated_at=start + timedelta(minutes=n + 1),
        )
        asset.timings.append(
            StageTiming(stage="transcribe_chunk", started_at=asset.created_at, ended_at=asset.updated_at)
        )
        asset.quality.add([QualitySample.of(Signal.ASR_WORD_PROBABILITY, "transcribe_chunk", "whisper", [0.9] * 10)])
        assets.append(asset)
    metrics = {(name, tuple(dims.items())): value for name, value, dims in report_metrics(build_report(assets, start))}
    assert {name for name, _ in metrics} <= set(all_names())
    assert metrics[("ModelErrorRate", (("stage", "transcribe_chunk"),))] == 25.0  # 1 of 4 calls failed
    assert metrics[("ConfidenceMean", (("signal", "asr_word_probability"),))] == pytest.approx(0.9)
    assert metrics[("DriftAlarms", ())] == 0.0
    assert metrics[("EndToEndP95", ())] == pytest.approx(60.0)
    assert ("CostPerMediaHour", ()) in metrics and ("MediaMinutesPerWallMinute", ()) in metrics
