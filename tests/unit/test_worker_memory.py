"""The malloc arena cap the long-running workers set at start (medialens.worker.memory)."""

from __future__ import annotations

import platform

import pytest

from medialens.worker.memory import cap_malloc_arenas

pytestmark = pytest.mark.unit


def test_the_environment_wins_over_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert cap_malloc_arenas() is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's arena cap is glibc's")
def test_glibc_takes_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert cap_malloc_arenas() is True
