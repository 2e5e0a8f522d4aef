"""Keeping leases alive while work runs: task heartbeats, message visibility."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def repeating(every_s: float, action: Callable[[], None], name: str) -> Iterator[None]:
    """Calls ``action`` every ``every_s`` seconds from a daemon thread while the block runs;
    ``action`` handles its own errors (a missed beat must not end the work)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every_s):
            action()

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
