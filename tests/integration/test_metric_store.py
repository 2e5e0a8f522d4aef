"""The embedded profile's metric store and the report sections it feeds: queues, API latency per
route and status class, GPU use."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from aws_lambda_powertools.metrics import MetricUnit

from medialens.domain.assets import utcnow
from medialens.insight.report import API_RESPONSES, QUEUE_DEPTH, QUEUE_WAIT, SAMPLED_METRICS, build_report
from medialens.local.metric_store import MetricStore
from medialens.observability import emit, record_local, set_local_sink
from medialens.worker import gpu

pytestmark = pytest.mark.integration


def test_what_the_code_emits_locally_lands_in_the_store_and_in_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")  # the embedded profile: no EMF
    store = MetricStore(tmp_path / "metrics.sqlite3")
    set_local_sink(store)
    try:
        started = utcnow() - timedelta(seconds=1)
        for ms, route in ((12.0, "/search"), (30.0, "/search"), (18.0, "/search"), (4.0, "/health")):
            emit("ApiLatency", MetricUnit.Milliseconds, ms, {"route": route})
            emit("ApiResponses_2xx", MetricUnit.Count, 1)
        emit("ApiResponses_4xx", MetricUnit.Count, 1)
        for visible, in_flight in ((3, 1), (7, 2), (0, 0)):  # three sampling rounds, a second apart
            record_local(QUEUE_DEPTH, visible, {"queue": "medialens-light", "state": "visible"})
            record_local(QUEUE_DEPTH, in_flight, {"queue": "medialens-light", "state": "in_flight"})
            time.sleep(1.01)
        record_local(QUEUE_WAIT, 2.5, {"queue": "medialens-light"})
        emit("GpuUtilization", MetricUnit.Percent, 40.0, {"device": "0"})
        emit("GpuUtilization", MetricUnit.Percent, 80.0, {"device": "0"})
        emit("GpuMemoryUsed", MetricUnit.Megabytes, 2048.0, {"device": "0"})
        emit("StageLatency", MetricUnit.Milliseconds, 10.0, {"stage": "probe"})  # not a sampled series
        samples = store.samples(SAMPLED_METRICS, started, utcnow() + timedelta(seconds=1), prefixes=[API_RESPONSES])
    finally:
        set_local_sink(None)
        store.close()
    assert {s.name for s in samples} == {
        "ApiLatency",
        "ApiResponses_2xx",
        "ApiResponses_4xx",
        QUEUE_DEPTH,
        QUEUE_WAIT,
        "GpuUtilization",
        "GpuMemoryUsed",
    }
    report = build_report([], started, utcnow() + timedelta(seconds=1), samples=samples)
    routes = {r.route: r.milliseconds for r in report.api_routes}
    assert routes["/search"].count == 3 and routes["/search"].p50 == 18.0 and routes["/health"].count == 1
    assert report.api_responses == {"2xx": 4, "4xx": 1}
    (light,) = report.queues
    assert (light.max_visible, light.max_in_flight, light.max_wait_s) == (7.0, 2.0, 2.5)
    assert len(light.points) >= 3  # a round that straddles a second adds one
    (device,) = report.gpus
    assert (device.utilization_mean, device.utilization_max, device.memory_max_mib) == (60.0, 80.0, 2048.0)


def test_the_store_forgets_samples_older_than_its_retention(tmp_path: Path) -> None:
    path = tmp_path / "metrics.sqlite3"
    store = MetricStore(path)
    store.record(QUEUE_WAIT, 1.0, {"queue": "q"})
    store.flush()
    store._connection.execute("UPDATE samples SET at = at - 31 * 86400")  # a month and a day ago
    store.close()
    reopened = MetricStore(path)
    try:
        assert reopened.samples([QUEUE_WAIT], utcnow() - timedelta(days=60), utcnow()) == []
    finally:
        reopened.close()


def test_without_an_nvidia_gpu_nothing_is_sampled() -> None:
    if gpu._nvml() is not None:
        pytest.skip("this machine has an NVIDIA GPU: the sampler runs")
    assert gpu.watch_gpus(threading.Event()) is None
