"""GPU utilisation and memory, sampled from NVML (NVIDIA's management library, through its
official bindings) by the heavy worker while it runs: ``GpuUtilization`` (%) and
``GpuMemoryUsed`` (MiB) per device. Without an NVIDIA GPU or driver there is nothing to sample,
and nothing is emitted."""

from __future__ import annotations

import threading
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from medialens.observability import emit, get_logger

SAMPLE_EVERY_S = 15.0
MIB = 1024**2

logger = get_logger("medialens-gpu")


def _nvml() -> Any | None:
    """The initialised NVML module, or None where there is no GPU to watch."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as error:  # ImportError, or an NVMLError: no bindings, driver or device
        logger.debug("no GPU to watch", extra={"reason": str(error)}, exc_info=True)
        return None
    return pynvml


def sample_once(nvml: Any) -> int:
    """Emits one sample per device; the number of devices."""
    devices = nvml.nvmlDeviceGetCount()
    for index in range(devices):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        utilization = nvml.nvmlDeviceGetUtilizationRates(handle)
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        dimensions = {"device": str(index)}
        emit("GpuUtilization", MetricUnit.Percent, float(utilization.gpu), dimensions)
        emit("GpuMemoryUsed", MetricUnit.Megabytes, memory.used / MIB, dimensions)
    return int(devices)


def watch_gpus(stop: threading.Event, every_s: float = SAMPLE_EVERY_S) -> threading.Thread | None:
    """Samples every device until ``stop``; None (and no thread) without a GPU."""
    nvml = _nvml()
    if nvml is None:
        return None

    def run() -> None:
        try:
            while not stop.is_set():
                try:
                    sample_once(nvml)
                except Exception:  # a driver hiccup costs one sample, not the worker
                    logger.warning("GPU sample failed", exc_info=True)
                stop.wait(every_s)
        finally:
            nvml.nvmlShutdown()

    thread = threading.Thread(target=run, name="gpu-sampler", daemon=True)
    thread.start()
    return thread
