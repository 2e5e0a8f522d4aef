"""onnxruntime for the ONNX runtimes (text embeddings, CLIP, OCR): which execution providers to
ask for, and sessions built with the options they run with."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import onnxruntime as ort

_PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


def select_providers() -> list[str]:
    """CUDA first when this onnxruntime build has it, CPU always as the fallback."""
    available = ort.get_available_providers()
    return [provider for provider in _PREFERRED_PROVIDERS if provider in available]


def create_session(
    path: Path,
    *,
    providers: Sequence[str] | None = None,
    intra_op_threads: int = 0,
    inter_op_threads: int | None = None,
    memory_arena: bool = True,
) -> ort.InferenceSession:
    """A session for the graph at ``path`` with every graph optimisation on.

    ``providers`` None or empty: :func:`select_providers`. ``intra_op_threads`` 0 is onnxruntime's
    default, one per physical core; ``inter_op_threads`` None keeps onnxruntime's default.
    ``memory_arena`` False: the CPU buffers go back to the allocator after each run instead of
    staying in onnxruntime's arena, which keeps what the largest input ever needed for the life
    of the session (worth it for a graph whose input sizes vary widely).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    if inter_op_threads is not None:
        options.inter_op_num_threads = inter_op_threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_cpu_mem_arena = memory_arena
    return ort.InferenceSession(str(path), sess_options=options, providers=list(providers or select_providers()))
