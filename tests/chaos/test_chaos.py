"""Chaos: the embedded pipeline killed at its worst moments, fed duplicate, stale and poison
events. Whatever happens, every input ends in exactly one terminal state, with the moments a
clean run gives it.

Kills happen in a separate runner process (``kill_at.py``: SIGKILL, no cleanup); the next
runner (``medialens worker --until-idle``) must finish the work.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medialens import aws
from medialens.adapters.storage.base import ObjectInfo
from medialens.local.runtime import LocalRuntime
from medialens.local.uploads import UploadedFile, plan_uploads, upload
from medialens.local.wiring import drop_outbox, local_services
from medialens.orchestration.provision import dead_letter_queue_name
from medialens.services import Services
from medialens.settings import Settings, get_settings

from ..e2e.conftest import fast_settings

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
CLI = str(Path(sys.executable).with_name("medialens"))
TOPICS = ("ferry timetable", "library opening hours", "recycling collection", "harbour festival")

Moments = dict[str, list[tuple[str, int | None, str]]]  # file name -> (modality, page, text), sorted


def write_inputs(folder: Path) -> None:
    """Three documents of several passages each, and one corrupt PDF that must end FAILED."""
    folder.mkdir(parents=True, exist_ok=True)
    for n, topic in enumerate(TOPICS[:3]):
        sections = [
            f"# {topic.title()} {section}\n\n"
            + " ".join(f"The {topic} notice {n}.{section}.{line} changes on weekday {line}." for line in range(12))
            for section in range(3)
        ]
        (folder / f"notice-{n}.md").write_text("\n\n".join(sections) + "\n")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 8)


def upload_without_runner(settings: Settings, folder: Path) -> list[UploadedFile]:
    """``medialens ingest`` without its background runner: objects and outbox rows only."""
    plan, _ = plan_uploads([folder], settings.drop_prefix)
    return upload(local_services(settings), plan)


def moments_by_file(services: Services) -> Moments:
    found: Moments = {}
    for asset in services.registry.iter_all():
        moments = services.index.asset_moments(asset.asset_id, 1000)
        found[asset.source.key.rsplit("/", 1)[1]] = sorted((m.modality.value, m.page, m.text) for m in moments)
    return found


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MEDIALENS_HOME=str(home), MEDIALENS_VISIBILITY_TIMEOUT_S="5")
    command = [sys.executable, str(HERE / "kill_at.py"), *args] if args[0] in KILL_POINTS else [CLI, *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=420, check=False)


KILL_POINTS = ("admission", "heavy-step", "index-write")


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> Moments:
    """What one uninterrupted runner makes of the inputs."""
    root = tmp_path_factory.mktemp("chaos-clean")
    write_inputs(root / "inputs")
    settings = get_settings().model_copy(update={"home": root / "home"})
    upload_without_runner(settings, root / "inputs")
    finished = run_cli(root / "home", "worker", "--until-idle")
    assert finished.returncode == 0, finished.stderr[-2000:]
    services = local_services(settings)
    statuses = {a.source.key.rsplit("/", 1)[1]: a.status for a in services.registry.iter_all()}
    assert statuses == {f"notice-{n}.md": "SUCCEEDED" for n in range(3)} | {"broken.pdf": "FAILED"}
    moments = moments_by_file(services)
    assert all(len(moments[f"notice-{n}.md"]) > 1 for n in range(3)) and moments["broken.pdf"] == []
    return moments


def assert_like_the_clean_run(services: Services, uploaded: list[UploadedFile], clean: Moments) -> None:
    assets = services.registry.iter_all()
    # One asset per input, none twice, every one terminal.
    assert sorted(a.asset_id for a in assets) == sorted(u.asset_id for u in uploaded)
    assert all(a.status.terminal for a in assets), [(a.source.key, a.status) for a in assets]
    assert moments_by_file(services) == clean
    assert drop_outbox(services.settings).pending_count() == 0


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_runner_killed_mid_work_leaves_nothing_lost_or_doubled(
    point: str, clean_run: Moments, settings: Settings, tmp_path: Path
) -> None:
    write_inputs(tmp_path / "inputs")
    uploaded = upload_without_runner(settings, tmp_path / "inputs")
    killed = run_cli(settings.home, point)
    assert killed.returncode == -signal.SIGKILL, (point, killed.returncode, killed.stderr[-2000:])
    left = local_services(settings).registry.iter_all()
    assert len(left) < len(uploaded) or any(not a.status.terminal for a in left)  # work was left behind

    finished = run_cli(settings.home, "worker", "--until-idle")
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert_like_the_clean_run(local_services(settings), uploaded, clean_run)
    if point == "heavy-step":
        # The executions resumed where they stopped: the steps answered before the kill were not redone.
        log = (settings.home / "logs" / "pipeline.log").read_text()
        reused = {json.loads(line)["step"] for line in log.splitlines() if '"step output reused"' in line}
        assert {"probe", "extract_document"} <= reused


def test_duplicate_stale_and_poison_events_change_nothing(clean_run: Moments, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    write_inputs(inputs)
    settings = fast_settings()
    uploaded = upload_without_runner(settings, inputs)
    outbox = drop_outbox(settings)
    # Every event delivered twice more, and a stale one: an earlier revision's event for a key
    # that holds a newer object by the time it is admitted.
    for item in uploaded:
        outbox.record(item.info)
        outbox.record(item.info)
    first = uploaded[0].info
    outbox.record(ObjectInfo(first.bucket, first.key, 10, "0" * 32))

    with LocalRuntime(settings) as runtime:
        sqs, queues = aws.sqs(runtime.settings), runtime.resources.queue_urls
        poison = {
            settings.ingest_queue: "this is not an event",
            settings.light_queue: json.dumps({"TaskToken": "x", "step": "no_such_step", "asset": {}}),
        }
        for queue, body in poison.items():
            sqs.send_message(QueueUrl=queues[queue], MessageBody=body)
        assert runtime.wait_until_idle(timeout_s=240)
        assert runtime.services is not None
        services = runtime.services
        assert_like_the_clean_run(services, uploaded, clean_run)
        # One execution per input: a duplicate event finds the one running (Step Functions answers
        # a start with the same name and input with it) or the finished asset.
        listed = aws.stepfunctions(runtime.settings).list_executions(stateMachineArn=services.state_machine_arn)
        assert len(listed["executions"]) == len(uploaded)
        # The poison is kept for inspection once its receives are used up, not retried forever.
        deadline = time.monotonic() + 60
        archived: set[str] = set()
        dead_letter_queues = {dead_letter_queue_name(queue) for queue in poison}
        while not archived >= dead_letter_queues and time.monotonic() < deadline:
            keys = services.blobs.list_keys(f"s3://{settings.artifacts_bucket}/dead-letters/")
            archived = {key.split("/")[1] for key in keys}
            time.sleep(0.5)
        assert archived >= dead_letter_queues
