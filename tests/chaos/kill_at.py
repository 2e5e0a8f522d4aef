"""A runner that is killed (SIGKILL: no cleanup, no finally) at one point of its work, as a
crashed host or an OOM kill would stop it. Used by the chaos suite:

    python tests/chaos/kill_at.py admission|heavy-step|index-write [nth]

- admission: the asset is recorded QUEUED, its execution not yet started;
- heavy-step: a heavy batch (text embedding) has been computed, its tasks not yet answered;
- index-write: half of a batch of moments is written to the index, the rest not.

On the ``nth`` time the point is reached (default 1); then the process is gone. Nothing here is
in the library: the points are reached by wrapping its functions, and the runner is the CLI's.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from medialens import admission
from medialens.adapters.index.lance import LanceMomentIndex
from medialens.cli.main import app
from medialens.domain.moments import Moment
from medialens.domain.steps import StepName
from medialens.pipeline.catalog import StepSpec

point, nth = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1
reached = 0


def _die_on_nth() -> bool:
    global reached
    reached += 1
    return reached >= nth


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


if point == "admission":
    start_execution: Callable[..., bool] = admission.start_execution

    def start_then_never(*args: Any) -> bool:
        if _die_on_nth():
            _kill()
        return start_execution(*args)

    admission.start_execution = start_then_never
elif point == "heavy-step":
    execute = StepSpec.execute

    def execute_then_die(self: StepSpec[Any, Any], services: Any, calls: Sequence[Any]) -> list[Any]:
        outcomes = execute(self, services, calls)
        if self.name is StepName.EMBED_TEXT and _die_on_nth():
            _kill()
        return outcomes

    StepSpec.execute = execute_then_die  # type: ignore[method-assign]
elif point == "index-write":
    upsert = LanceMomentIndex.upsert

    def half_then_die(self: LanceMomentIndex, moments: Sequence[Moment]) -> int:
        if len(moments) > 1 and _die_on_nth():
            upsert(self, moments[: len(moments) // 2])
            _kill()
        return upsert(self, moments)

    LanceMomentIndex.upsert = half_then_die  # type: ignore[method-assign]
else:
    raise SystemExit(f"unknown point {point!r}")

app(["worker", "--until-idle"])
