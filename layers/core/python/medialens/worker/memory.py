"""Process-wide memory settings for the long-running workers (the heavy worker's container, the
embedded runtime and ``medialens serve``)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

# glibc's mallopt parameter for the most malloc arenas a process may create.
M_ARENA_MAX = -8
# Measured on the embedded pipeline (scripts/bench_pipeline.py --mixed --no-ceiling --no-copies,
# 2 cores): glibc's default (up to 8 arenas per core, one per thread that contends, each keeping
# what was freed into it) peaked at 2,678 MB RSS in 115.5 s; 2 arenas peaked at 2,156 MB in 105.4 s.
MALLOC_ARENAS = 2


def cap_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Caps the malloc arenas the process creates from now on (call it before starting
    threads); ``MALLOC_ARENA_MAX`` in the environment, which glibc applies itself, wins. Whether
    the cap was set (False without glibc)."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to cap
        return False
    return bool(mallopt(M_ARENA_MAX, arenas))
