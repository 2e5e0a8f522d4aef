"""Putting local files into the drop bucket, as a user's upload to S3 would.

Every file gets its own key: a folder keeps its name and layout under the drop prefix, and two
inputs with the same name (``ingest A/docs B/docs``) are told apart by as much of their parent
path as it takes. Hidden files are skipped; links are followed only inside the folders given
(``follow_links`` for any), and a link that leads outside or nowhere is reported, not dropped. A
file that cannot be read when its turn comes (deleted, unreadable) is reported and the rest of
the batch goes on.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from medialens.adapters.storage.base import ObjectInfo, join_uri
from medialens.admission import asset_id_of
from medialens.domain.assets import UploadOptions
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


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file not uploaded, and why (in words for the person who asked)."""

    path: Path
    reason: str


def _labels(roots: Sequence[Path]) -> dict[Path, str]:
    """Each root's name, lengthened by its parents' names until no two roots share one."""
    depth = dict.fromkeys(roots, 1)
    while True:
        labels = {root: "/".join(root.parts[-depth[root] :]) for root in roots}
        clashing = [root for root in roots if sum(labels[other] == labels[root] for other in roots) > 1]
        deeper = [root for root in clashing if depth[root] < len(root.parts) - 1]
        if not deeper:
            return labels
        for root in deeper:
            depth[root] += 1


def _walk(root: Path, follow_links: bool, skipped: list[Skipped]) -> Iterator[Path]:
    """The files under ``root`` in a stable order, hidden ones and unwanted links reported."""
    for directory, subdirectories, files in os.walk(root, followlinks=follow_links):
        here = Path(directory)
        subdirectories.sort()
        for name in list(subdirectories):
            path = here / name
            if name.startswith("."):
                subdirectories.remove(name)
                skipped.append(Skipped(path, "hidden folder"))
            elif path.is_symlink() and not follow_links:
                subdirectories.remove(name)
                if not path.resolve().is_relative_to(root):
                    skipped.append(
                        Skipped(path, f"link to a folder outside {root} (pass --follow-links to include it)")
                    )
        for name in sorted(files):
            path = here / name
            if name.startswith("."):
                skipped.append(Skipped(path, "hidden file"))
                continue
            if path.is_symlink():
                target = path.resolve()
                if not target.exists():
                    skipped.append(Skipped(path, "dangling link: its target does not exist"))
                    continue
                if target.is_relative_to(root):
                    skipped.append(Skipped(path, f"link to {target.relative_to(root)}, uploaded under its own name"))
                    continue
                if not follow_links:
                    skipped.append(Skipped(path, f"link to a file outside {root} (pass --follow-links to include it)"))
                    continue
            if path.is_file():
                yield path


def plan_uploads(
    paths: Sequence[Path], prefix: str, *, follow_links: bool = False
) -> tuple[list[PlannedUpload], list[Skipped]]:
    """Files to upload with their drop keys, and what was left out with why. A path that does not
    exist is an error (nothing is uploaded): it is a mistake in the command, not in the data."""
    roots: list[Path] = []
    for given in paths:
        path = given.expanduser()
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {given}")
        roots.append(path.resolve())
    roots = list(dict.fromkeys(roots))
    labels = _labels(roots)
    planned: dict[str, PlannedUpload] = {}
    seen: set[Path] = set()  # a file under two given roots (a folder and its subfolder) goes once
    skipped: list[Skipped] = []
    for root in roots:
        files = _walk(root, follow_links, skipped) if root.is_dir() else iter([root])
        for file in files:
            if file.resolve() in seen:
                continue
            seen.add(file.resolve())
            relative = file.relative_to(root).as_posix() if root.is_dir() else ""
            key = f"{prefix}{labels[root]}" + (f"/{relative}" if relative else "")
            if key in planned:  # only names the store cannot tell apart remain: say so
                skipped.append(Skipped(file, f"same drop key as {planned[key].path}: rename one of them"))
                continue
            planned[key] = PlannedUpload(file, key)
    return list(planned.values()), skipped


def upload(
    services: Services,
    plan: Sequence[PlannedUpload],
    on_uploaded: Callable[[UploadedFile], None] | None = None,
    on_failed: Callable[[Skipped], None] | None = None,
    options: UploadOptions | None = None,
) -> list[UploadedFile]:
    """Uploads the plan, with ``options`` as the objects' metadata; a file that cannot be read now
    is reported through ``on_failed`` (or dropped from the result when nobody listens) while the
    others go on."""
    bucket = services.settings.drop_bucket
    metadata = (options or UploadOptions()).as_metadata()
    uploaded = []
    for item in plan:
        content_type = mimetypes.guess_type(item.path.name)[0]
        try:
            info = services.blobs.put_file(join_uri(bucket, item.key), item.path, content_type, metadata)
        except OSError as error:  # deleted or made unreadable since it was planned
            if on_failed is not None:
                on_failed(Skipped(item.path, f"could not be read: {error.strerror or error}"))
            continue
        result = UploadedFile(item.path, item.key, asset_id_of(info), info)
        uploaded.append(result)
        if on_uploaded is not None:
            on_uploaded(result)
    return uploaded
