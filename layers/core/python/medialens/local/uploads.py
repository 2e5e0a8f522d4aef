"""Putting local files into the drop bucket, as a user's upload to S3 would."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from medialens.adapters.storage.base import ObjectInfo, join_uri
from medialens.ids import asset_id_for
from medialens.services import Services


@dataclass(frozen=True, slots=True)
class PlannedUpload:
    path: Path
    key: str


@dataclass(frozen=True, slots=True)
class UploadedFile:
    path: Path
    key: str
    asset_id: str
    info: ObjectInfo


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def plan_uploads(paths: Sequence[Path], prefix: str) -> tuple[list[PlannedUpload], list[Path]]:
    """Files to upload with their drop keys (a folder keeps its name and layout); hidden files
    (``.DS_Store``, ``.git``) are skipped and returned separately."""
    planned: dict[str, PlannedUpload] = {}
    skipped: list[Path] = []
    for given in paths:
        path = given.expanduser()
        if path.is_dir():
            root = path.resolve()
            for file in sorted(root.rglob("*")):
                if not file.is_file():
                    continue
                if _hidden(file, root):
                    skipped.append(file)
                    continue
                key = f"{prefix}{root.name}/{file.relative_to(root).as_posix()}"
                planned[key] = PlannedUpload(file, key)
        elif path.is_file():
            key = f"{prefix}{path.name}"
            planned[key] = PlannedUpload(path.resolve(), key)
        else:
            raise FileNotFoundError(f"no such file or folder: {given}")
    return list(planned.values()), skipped


def upload(
    services: Services,
    plan: Sequence[PlannedUpload],
    on_uploaded: Callable[[UploadedFile], None] | None = None,
) -> list[UploadedFile]:
    bucket = services.settings.drop_bucket
    uploaded = []
    for item in plan:
        content_type = mimetypes.guess_type(item.path.name)[0]
        info = services.blobs.put_file(join_uri(bucket, item.key), item.path, content_type)
        result = UploadedFile(
            item.path, item.key, asset_id_for(info.bucket, info.key, info.version_id or info.etag), info
        )
        uploaded.append(result)
        if on_uploaded is not None:
            on_uploaded(result)
    return uploaded
