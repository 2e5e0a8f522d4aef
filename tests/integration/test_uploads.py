"""Planning and uploading local files: one key per file, links kept inside the given folders, and
a file that vanishes mid-batch reported while the rest go on."""

from __future__ import annotations

from pathlib import Path

import pytest

from medialens.local.uploads import Skipped, plan_uploads, upload
from medialens.services import Services
from medialens.settings import Settings

pytestmark = pytest.mark.integration


def _files(root: Path, names: dict[str, str]) -> None:
    for name, text in names.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_two_folders_with_the_same_name_get_their_own_keys(tmp_path: Path) -> None:
    _files(tmp_path, {"A/docs/plan.txt": "a", "B/docs/plan.txt": "b", "A/x.pdf": "1", "B/x.pdf": "2"})
    plan, skipped = plan_uploads(
        [tmp_path / "A" / "docs", tmp_path / "B" / "docs", tmp_path / "A" / "x.pdf", tmp_path / "B" / "x.pdf"],
        "incoming/",
    )
    assert sorted(item.key for item in plan) == [
        "incoming/A/docs/plan.txt",
        "incoming/A/x.pdf",
        "incoming/B/docs/plan.txt",
        "incoming/B/x.pdf",
    ]
    assert skipped == []


def test_a_single_folder_keeps_its_plain_name_and_a_file_given_twice_goes_once(tmp_path: Path) -> None:
    _files(tmp_path, {"docs/a.txt": "a", "docs/sub/b.txt": "b"})
    plan, _ = plan_uploads([tmp_path / "docs", tmp_path / "docs" / "sub", tmp_path / "docs"], "incoming/")
    assert sorted(item.key for item in plan) == ["incoming/docs/a.txt", "incoming/docs/sub/b.txt"]


def test_names_differing_only_by_control_characters_stay_two_files(tmp_path: Path, settings: Settings) -> None:
    _files(tmp_path, {"d/a\tb.txt": "tab", "d/a\nb.txt": "newline"})
    plan, _ = plan_uploads([tmp_path / "d"], "incoming/")
    uploaded = upload(Services(settings), plan)
    assert len({u.key for u in uploaded}) == 2 and len({u.asset_id for u in uploaded}) == 2
    blobs = Services(settings).blobs
    assert {blobs.get_text(u.info.uri) for u in uploaded} == {"tab", "newline"}


def test_links_are_not_followed_out_of_the_given_folder(tmp_path: Path) -> None:
    _files(tmp_path, {"outside/secret.txt": "s", "ingest/kept.txt": "k", "ingest/inner/deep.txt": "d"})
    root = tmp_path / "ingest"
    (root / "secret-link.txt").symlink_to(tmp_path / "outside" / "secret.txt")
    (root / "outside-dir").symlink_to(tmp_path / "outside")
    (root / "kept-link.txt").symlink_to(root / "kept.txt")  # inside: the same file, uploaded once
    (root / "dangling.txt").symlink_to(tmp_path / "nowhere.txt")
    (root / ".DS_Store").write_text("x")
    plan, skipped = plan_uploads([root], "incoming/")
    assert sorted(item.key for item in plan) == ["incoming/ingest/inner/deep.txt", "incoming/ingest/kept.txt"]
    reasons = {item.path.name: item.reason for item in skipped}
    assert reasons["kept-link.txt"] == "link to kept.txt, uploaded under its own name"
    assert reasons["secret-link.txt"].startswith("link to a file outside")
    assert reasons["outside-dir"].startswith("link to a folder outside")
    assert reasons["dangling.txt"].startswith("dangling link")
    assert reasons[".DS_Store"] == "hidden file"
    followed, _ = plan_uploads([root], "incoming/", follow_links=True)
    assert "incoming/ingest/secret-link.txt" in {item.key for item in followed}


def test_a_file_that_vanishes_mid_batch_is_reported_and_the_rest_are_uploaded(
    tmp_path: Path, settings: Settings
) -> None:
    _files(tmp_path, {"batch/1.txt": "one", "batch/2.txt": "two", "batch/3.txt": "three"})
    plan, _ = plan_uploads([tmp_path / "batch"], "incoming/")
    (tmp_path / "batch" / "2.txt").unlink()  # gone between planning and its turn
    failed: list[Skipped] = []
    uploaded = upload(Services(settings), plan, on_failed=failed.append)
    assert [u.key for u in uploaded] == ["incoming/batch/1.txt", "incoming/batch/3.txt"]
    assert [f.path.name for f in failed] == ["2.txt"] and "could not be read" in failed[0].reason


def test_a_missing_input_is_a_mistake_in_the_command(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        plan_uploads([tmp_path / "typo"], "incoming/")
