"""Shared fixtures: an isolated MEDIALENS_HOME per test, no AWS credentials or endpoints leaking
in from the developer's shell, and one model cache per checkout (models are built once)."""

from __future__ import annotations

import os
import shutil
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from medialens import aws
from medialens.services import set_services
from medialens.settings import Settings, get_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
# `make models` builds here; tests reuse it so the model store builds at most once per checkout.
MODEL_CACHE = Path(os.environ.get("MEDIALENS_MODEL_CACHE", REPO_ROOT / ".medialens" / "models"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test gets an id of its own: `make test` spreads tests over processes by id
    (pytest-xdist), and items sharing one run once. Schemathesis names each API operation's item
    but, under pytest 9's structured ids, leaves them all the function's id: the operation becomes
    the id's parameters here (the check below fails the run if that ever stops working)."""
    for item in items:
        label = getattr(item, "operation_label", None)
        if label is not None and item.id.params is None:
            item._id = item.id.with_params(label)
    duplicates = sorted(nodeid for nodeid, count in Counter(item.nodeid for item in items).items() if count > 1)
    if duplicates:
        raise pytest.UsageError(f"tests share an id, so a parallel run would skip some: {duplicates}")


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("MEDIALENS_") or name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "OPENSEARCH_URL"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MEDIALENS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MEDIALENS_MODEL_CACHE", str(MODEL_CACHE))
    # A `medialens search` run by a test starts no background search server (the test that
    # checks that one turns it back on).
    monkeypatch.setenv("MEDIALENS_SEARCH_SERVER_IDLE_S", "0")
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


def _require_media_tools() -> None:
    # scripts/install_system_deps.sh installs them: a missing tool is a broken setup, not a skip.
    missing = [tool for tool in ("ffmpeg", "espeak-ng") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: run scripts/install_system_deps.sh (make test does)")


@pytest.fixture(scope="session")
def video_samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scripts/sample_video.py's files (video, images, bad media), written once per session."""
    _require_media_tools()
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    import sample_video

    folder = tmp_path_factory.getbasetemp() / "sample-video"
    sample_video.ensure(folder)
    return folder


@pytest.fixture(scope="session")
def audio_samples() -> ModuleType:
    """scripts/sample_audio.py, whose recordings and scripts the speech tests use."""
    _require_media_tools()
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    import sample_audio

    return sample_audio
