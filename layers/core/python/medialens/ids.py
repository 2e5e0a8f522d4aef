"""Deterministic identifiers: the same input always maps to the same id, so every write is an upsert."""

from __future__ import annotations

import hashlib
import re

from medialens import PIPELINE_VERSION


def _digest(*parts: str, length: int) -> str:
    joined = "\x1f".join(parts).encode("utf-8")
    return hashlib.sha256(joined).hexdigest()[:length]


def asset_id_for(bucket: str, key: str, revision: str) -> str:
    """A stable asset id from the object's bucket, key and version id (or ETag when unversioned)."""
    return "a" + _digest(bucket, key, revision.strip('"'), length=23)


def execution_name_for(asset_id: str, pipeline_version: str = PIPELINE_VERSION, attempt: int = 0) -> str:
    """Execution names make a duplicate S3 event a no-op: a second start finds the first run."""
    base = f"{asset_id}-p{pipeline_version}"
    name = base if attempt == 0 else f"{base}-r{attempt}"
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:80]


def moment_id_for(asset_id: str, modality: str, locator: str) -> str:
    """One id per (asset, modality, position): re-running a step overwrites its moments."""
    return _digest(asset_id, modality, locator, length=32)
