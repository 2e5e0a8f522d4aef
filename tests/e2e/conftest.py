"""End-to-end fixtures: the sample corpus and a running local pipeline."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from medialens.domain.assets import Asset, UploadOptions
from medialens.ids import asset_id_for
from medialens.local.runtime import LocalRuntime
from medialens.local.uploads import UploadedFile, plan_uploads, upload
from medialens.settings import Settings, get_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "scripts"))

import make_sample_media  # noqa: E402 - the script that also feeds the demo


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("media") / "sample-media"
    expected = json.loads(make_sample_media.main(folder, media=False).read_text())
    return folder, expected


def fast_settings(**overrides: Any) -> Settings:
    """Short visibility timeouts and few receives, so fault paths finish in seconds."""
    get_settings.cache_clear()
    return get_settings().model_copy(update={"visibility_timeout_s": 2, "max_receive_count": 2, **overrides})


@pytest.fixture
def start_runtime() -> Iterator[Callable[..., LocalRuntime]]:
    started: list[LocalRuntime] = []

    def start(settings: Settings | None = None, **kwargs: Any) -> LocalRuntime:
        runtime = LocalRuntime(settings or fast_settings(), **kwargs).start()
        started.append(runtime)
        return runtime

    yield start
    for runtime in started:
        runtime.stop()


def ingest_and_wait(
    runtime: LocalRuntime, paths: list[Path], timeout_s: float = 240, options: UploadOptions | None = None
) -> tuple[list[UploadedFile], dict[str, Asset]]:
    assert runtime.services is not None
    plan, _ = plan_uploads(paths, runtime.settings.drop_prefix)
    uploaded = upload(runtime.services, plan, options=options)
    assets = runtime.wait_for([u.asset_id for u in uploaded], timeout_s=timeout_s)
    return uploaded, {a.asset_id: a for a in assets}


def assets_by_file_name(uploaded: list[UploadedFile], assets: dict[str, Asset]) -> dict[str, Asset]:
    """What ``ingest_and_wait`` returned, keyed by each upload's file name."""
    return {u.key.rsplit("/", 1)[1]: assets[u.asset_id] for u in uploaded}


def put_in_drop_bucket(s3: Any, bucket: str, uploads: dict[str, Path]) -> dict[str, str]:
    """Uploads files as a user would (PutObject, no medialens code); returns each key's asset id."""
    asset_ids = {}
    for key, path in uploads.items():
        response = s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        asset_ids[key] = asset_id_for(bucket, key, response["ETag"])
    return asset_ids


def closed_executions(list_them: Callable[[], list[dict[str, Any]]], timeout_s: float = 60) -> list[dict[str, Any]]:
    """The executions once none is RUNNING (or at the timeout): the last step records the asset's
    verdict in the registry and then answers its task token, so an execution may still be closing
    when the registry already says SUCCEEDED."""
    deadline = time.monotonic() + timeout_s
    while True:
        executions = list_them()
        if all(e["status"] != "RUNNING" for e in executions) or time.monotonic() > deadline:
            return executions
        time.sleep(0.25)
