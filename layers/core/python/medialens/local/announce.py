"""Where a running ``medialens serve`` answers for a home, so a ``medialens search`` in another
process asks it instead of opening the index and loading the query models itself (a warm server
answers in milliseconds; a cold process spends seconds importing and loading).

Standard library only: this is read on the search command's path, before anything heavy loads.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ANNOUNCEMENT = "serve.json"
# Left by a search that started a server until that server announces itself, so searches in the
# meantime start no second one; older than STARTING_STALE_S, it is taken for a start that failed.
STARTING = "serve.starting"
STARTING_STALE_S = 120.0
# A semantic query's first answer loads the server's query models: seconds, not milliseconds.
ANSWER_TIMEOUT_S = 30.0


class ServerUnavailableError(RuntimeError):
    """No running server answered; the caller searches in its own process."""


def announcement_path(home: Path) -> Path:
    return home / ANNOUNCEMENT


def announce(home: Path, url: str) -> None:
    """Written once the server listens; replaced atomically (a reader never sees half of it)."""
    path = announcement_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps({"url": url, "pid": os.getpid()}), encoding="utf-8")
    partial.replace(path)


def withdraw(home: Path) -> None:
    """Removes this process's announcement (another server's is left alone)."""
    path = announcement_path(home)
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def claim_server_start(home: Path) -> bool:
    """True for the one caller that may start a server for ``home`` now: none is starting (or
    the last start is stale)."""
    marker = home / STARTING
    try:
        if time.time() - marker.stat().st_mtime < STARTING_STALE_S:
            return False
        marker.unlink(missing_ok=True)
    except FileNotFoundError:
        pass
    home.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        return False
    return True


def server_started(home: Path) -> None:
    """The started server announced itself (or gave up): the next search may start another."""
    (home / STARTING).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def running_server(home: Path) -> str | None:
    """The URL of the server announced for ``home`` while its process lives; None otherwise."""
    try:
        note = json.loads(announcement_path(home).read_text(encoding="utf-8"))
        url, pid = str(note["url"]), int(note["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return url if _alive(pid) else None


def ask(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POSTs ``body`` as JSON to the server's ``path`` and returns its JSON answer; a server that
    is gone, refuses or answers an error raises :class:`ServerUnavailableError`."""
    request = urllib.request.Request(
        url.rstrip("/") + path,
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    try:
        # A server that is gone refuses the connection at once; the timeout is for one that hangs.
        with urllib.request.urlopen(request, timeout=ANSWER_TIMEOUT_S) as response:
            answer: dict[str, Any] = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise ServerUnavailableError(f"{url}: {error}") from error
    return answer
