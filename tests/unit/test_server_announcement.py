"""How a search finds a running `medialens serve` for its home: the announcement file, a dead
server's left behind, another server's kept, and a server that does not answer."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medialens.local.announce import (
    STARTING,
    STARTING_STALE_S,
    ServerUnavailableError,
    announce,
    announcement_path,
    ask,
    claim_server_start,
    running_server,
    server_started,
    withdraw,
)

pytestmark = pytest.mark.unit


def test_a_live_server_is_found_and_withdraws_its_own_announcement(tmp_path: Path) -> None:
    assert running_server(tmp_path) is None
    announce(tmp_path, "http://127.0.0.1:8765/")
    assert running_server(tmp_path) == "http://127.0.0.1:8765/"
    withdraw(tmp_path)
    assert not announcement_path(tmp_path).exists() and running_server(tmp_path) is None


def test_a_dead_servers_announcement_is_ignored_and_another_servers_is_kept(tmp_path: Path) -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)
    announcement_path(tmp_path).write_text(json.dumps({"url": "http://127.0.0.1:1/", "pid": dead_pid}))
    assert running_server(tmp_path) is None

    other = {"url": "http://127.0.0.1:2/", "pid": os.getppid()}  # alive, and not this process
    announcement_path(tmp_path).write_text(json.dumps(other))
    withdraw(tmp_path)
    assert json.loads(announcement_path(tmp_path).read_text()) == other

    announcement_path(tmp_path).write_text("{not json")
    assert running_server(tmp_path) is None


def test_a_server_that_is_gone_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    with pytest.raises(ServerUnavailableError):
        ask(f"http://127.0.0.1:{port}/", "/api/search", {"query": "x"})


def test_one_search_at_a_time_starts_a_server_and_a_failed_start_goes_stale(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert claim_server_start(home), "the first search starts one"
    assert not claim_server_start(home), "searches while it starts start none"
    server_started(home)
    assert claim_server_start(home), "once it has announced itself (or gave up), the next may"
    stale = time.time() - STARTING_STALE_S - 1
    os.utime(home / STARTING, (stale, stale))
    assert claim_server_start(home), "a start that never announced itself is taken for dead"
    assert not claim_server_start(home)
