"""Shared fixtures: an isolated MEDIALENS_HOME per test, no AWS credentials or endpoints leaking
in from the developer's shell, and one model cache per checkout (models are built once)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from medialens import aws
from medialens.services import set_services
from medialens.settings import Settings, get_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
# `make models` builds here; tests reuse it so the model store builds at most once per checkout.
MODEL_CACHE = Path(os.environ.get("MEDIALENS_MODEL_CACHE", REPO_ROOT / ".medialens" / "models"))


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("MEDIALENS_") or name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "OPENSEARCH_URL"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MEDIALENS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MEDIALENS_MODEL_CACHE", str(MODEL_CACHE))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    get_settings.cache_clear()
    aws.reset_clients()
    aws.reset_queue_urls()
    set_services(None)
    yield
    set_services(None)
    aws.reset_clients()
    aws.reset_queue_urls()
    get_settings.cache_clear()


@pytest.fixture
def settings() -> Settings:
    get_settings.cache_clear()
    return get_settings()
