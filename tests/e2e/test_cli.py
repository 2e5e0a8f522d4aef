"""The installed command as a user runs it: separate processes sharing state in MEDIALENS_HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from medialens.local.announce import running_server
from medialens.local.server import LocalServer
from medialens.settings import get_settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLI = str(Path(sys.executable).with_name("medialens"))


def medialens(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ) | env
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=environment, timeout=300, check=False)


def _eventually(check: Callable[[], bool], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_ingest_then_search_then_status_in_separate_processes(
    corpus: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    folder, _ = corpus
    batch = tmp_path / "batch"
    batch.mkdir()
    for name in ("employee-handbook.pdf", "product-faq.html"):
        (batch / name).write_bytes((folder / name).read_bytes())
    (batch / "broken.pdf").write_bytes((folder / "bad/corrupt.pdf").read_bytes())
    (batch / ".DS_Store").write_bytes(b"\x00\x00")  # hidden: skipped, not ingested

    ingest = medialens("ingest", str(batch), "--wait")
    assert ingest.returncode == 1, ingest.stderr  # one file failed: the exit code says so
    lines = ingest.stdout.splitlines()
    assert sum("SUCCEEDED" in line for line in lines) == 2
    assert any("FAILED" in line and "broken.pdf" in line and "corrupt or truncated PDF" in line for line in lines)
    assert "2 succeeded, 1 failed" in ingest.stderr

    search = medialens("search", "how many vacation days do employees get", "-k", "3", "--json")
    assert search.returncode == 0, search.stderr
    hits = json.loads(search.stdout)["hits"]
    assert set(hits[0]) == {
        "asset_id",
        "source",
        "media_type",
        "modality",
        "start",
        "end",
        "page",
        "language",
        "text",
        "score",
    }
    assert hits[0]["language"] == "en"
    assert hits[0]["source"].endswith("/batch/employee-handbook.pdf") and hits[0]["page"] == 2
    assert "25 vacation days" in hits[0]["text"]
    assert json.loads(search.stdout)["answered_by"] == "this process"

    # With `medialens serve` running for the home, a search asks it (warm index and models) and
    # prints the same hits; once it has stopped, the command answers itself again.
    with LocalServer(get_settings(), port=0, run_pipeline=False) as server:
        served = medialens("search", "how many vacation days do employees get", "-k", "3", "--json")
        assert served.returncode == 0, served.stderr
        assert json.loads(served.stdout)["answered_by"] == server.url
        assert json.loads(served.stdout)["hits"] == hits
    alone = medialens("search", "how many vacation days do employees get", "-k", "3", "--json")
    assert json.loads(alone.stdout)["answered_by"] == "this process" and json.loads(alone.stdout)["hits"] == hits

    # With search_server_idle_s on (the default outside tests), the search answers itself and
    # starts a server in the background; the next search asks it; idle, it stops by itself.
    home = get_settings().home
    first = medialens("search", "vacation days", "-k", "3", "--json", MEDIALENS_SEARCH_SERVER_IDLE_S="4")
    assert json.loads(first.stdout)["answered_by"] == "this process"
    assert "started a search server" in first.stderr
    assert _eventually(lambda: running_server(home) is not None, 120), (home / "logs/search-server.out").read_text()
    url = running_server(home)
    again = medialens("search", "how many vacation days do employees get", "-k", "3", "--json")
    assert json.loads(again.stdout)["answered_by"] == url and json.loads(again.stdout)["hits"] == hits
    assert "started a search server" not in again.stderr
    assert json.loads(medialens("status", "--json").stdout)["summary"]["search_server"] == url
    assert _eventually(lambda: running_server(home) is None, 60), "an idle search server stops by itself"
    assert "no request for 4 s: stopping" in (home / "logs/search-server.out").read_text()

    status = medialens("status", "--json")
    report = json.loads(status.stdout)
    assert report["summary"]["by_status"] == {"SUCCEEDED": 2, "FAILED": 1}
    assert report["summary"]["failures_by_code"] == {"MediaLens.InvalidMedia": 1}
    failed = next(a for a in report["assets"] if a["status"] == "FAILED")
    assert failed["source"].endswith("/batch/broken.pdf") and failed["stage"] == "extract_document"
    assert all(a["timings"] for a in report["assets"])

    # The operations report over the same run: figures as JSON, and one offline HTML page.
    page = tmp_path / "report.html"
    made = medialens("report", "--since", "2h", "-o", str(page), "--json")
    assert made.returncode == 0, made.stderr
    figures = json.loads(made.stdout)
    assert figures["assets"] == 3 and figures["by_status"] == {"SUCCEEDED": 2, "FAILED": 1}
    stages = {s["stage"]: s for s in figures["stages"]}
    assert {"probe", "extract_document", "embed_text", "index_moments"} <= set(stages)
    assert stages["embed_text"]["worker"] == "heavy" and stages["embed_text"]["batch_max"] >= 1
    errors = {e["stage"]: e for e in figures["errors"]}
    assert errors["extract_document"]["failures"] == 1 and errors["extract_document"]["calls"] == 3
    assert figures["cost"]["assets"] == 3 and 0 < figures["cost"]["per_asset_usd"] < 0.01
    assert figures["end_to_end_s"]["count"] == 3
    sampled = {q["queue"] for q in figures["queues"]}  # the runner sampled its queues
    assert {"medialens-ingest", "medialens-light", "medialens-heavy"} <= sampled
    html = page.read_text(encoding="utf-8")
    assert html.count("<svg") >= 3 and "<script" not in html
    assert 'src="http' not in html and "url(http" not in html and 'href="http' not in html  # opens offline

    again = medialens("ingest", str(batch), "--wait", "--json")  # unchanged files: same assets, no new work
    assert {r["asset_id"] for r in json.loads(again.stdout)["results"]} == {a["asset_id"] for a in report["assets"]}
    assert len(json.loads(medialens("status", "--json").stdout)["assets"]) == 3

    # Removed from the drop bucket (by asset id or by key): gone from status and from search.
    handbook = next(a for a in report["assets"] if a["source"].endswith("employee-handbook.pdf"))
    faq = next(a for a in report["assets"] if a["source"].endswith("product-faq.html"))
    remove = medialens("remove", handbook["asset_id"], faq["source"].split("/", 3)[3], "no-such-file", "--wait")
    assert remove.returncode == 2 and "no asset or drop-bucket object" in remove.stderr, remove.stderr
    assert "removed 2 objects" in remove.stderr
    left = json.loads(medialens("status", "--json").stdout)["assets"]
    assert [a["status"] for a in left] == ["FAILED"]
    search = medialens("search", "how many vacation days do employees get", "--json")
    assert json.loads(search.stdout)["hits"] == []


def test_a_runner_started_for_pending_work_waits_for_one_that_is_exiting(
    corpus: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """`ingest` without --wait spawns a runner; if the previous one still holds the lock on its way
    out, the new one must wait for it, not exit and leave the upload unadmitted."""
    from medialens.local.uploads import plan_uploads, upload
    from medialens.local.wiring import local_services, runner_lock
    from medialens.settings import get_settings

    folder, _ = corpus
    get_settings.cache_clear()
    settings = get_settings()
    plan, _ = plan_uploads([folder / "meeting-notes.txt"], settings.drop_prefix)
    (uploaded,) = upload(local_services(settings), plan)

    stalled = medialens("status")  # nothing runs: status says so
    assert "1 uploads are not admitted yet" in stalled.stderr and "no runner is processing them" in stalled.stderr
    report = json.loads(medialens("status", "--json").stdout)["summary"]
    assert report["uploads_not_admitted"] == 1 and report["waiting_without_runner"] == 1

    previous = runner_lock(settings)
    previous.acquire()  # a runner finishing up
    runner = subprocess.Popen([CLI, "worker", "--until-idle"], env=dict(os.environ))
    try:
        assert runner.wait(timeout=3) is None
    except subprocess.TimeoutExpired:
        pass  # still waiting for the lock, as it should
    finally:
        previous.release()
    assert runner.wait(timeout=240) == 0
    (asset,) = json.loads(medialens("status", "--json").stdout)["assets"]
    assert asset["asset_id"] == uploaded.asset_id and asset["status"] == "SUCCEEDED"


def test_after_an_upgrade_status_counts_the_stale_assets_and_reprocess_reruns_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("The ferry to the island leaves at dawn every Tuesday.\n", encoding="utf-8")
    assert medialens("ingest", str(notes), "--wait").returncode == 0
    assert medialens("reprocess", "--stale").returncode == 0  # nothing stale yet: nothing to do

    monkeypatch.setenv("MEDIALENS_PIPELINE_VERSION", "99")  # the next release analyses differently
    before = " ".join(medialens("status").stderr.split())  # rich wraps long lines
    assert "1 assets were analysed by an earlier pipeline version" in before
    assert "medialens reprocess --stale" in before
    assert json.loads(medialens("status", "--json").stdout)["summary"]["stale_assets"] == 1

    rerun = medialens("reprocess", "--stale", "--wait")
    assert rerun.returncode == 0, rerun.stderr
    assert "re-running 1 assets under pipeline version 99" in rerun.stderr
    after = json.loads(medialens("status", "--json").stdout)
    assert after["summary"]["stale_assets"] == 0 and [a["status"] for a in after["assets"]] == ["SUCCEEDED"]
    unknown = medialens("reprocess", "no-such-asset")
    assert unknown.returncode == 2 and "no-such-asset" in unknown.stderr
