"""The embedded runtime's moto Step Functions interpreter must read a task answer that arrives
before it starts waiting (a light step can answer within milliseconds of the message)."""

from __future__ import annotations

import time

import pytest
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint, CallbackOutcomeSuccess

from medialens.local.runtime import _keep_answers_that_come_before_the_wait

pytestmark = pytest.mark.integration


def _answered_then_waited(heartbeat_seconds: float) -> tuple[bool, float]:
    """Stores an answer, then sets up the heartbeat and waits on it: received?, seconds waited."""
    endpoint = CallbackEndpoint(callback_id="token")
    # The worker's answer lands between the message being sent and the heartbeat being set up.
    endpoint.notify(CallbackOutcomeSuccess(callback_id="token", output="{}"))
    heartbeat = endpoint.setup_heartbeat_endpoint(heartbeat_seconds=heartbeat_seconds)
    started = time.perf_counter()
    received = heartbeat.clear_and_wait()
    return received, time.perf_counter() - started


def test_an_answer_before_the_wait_is_read_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # moto's own method (an embedded runtime started earlier in this process has patched it).
    current = CallbackEndpoint.setup_heartbeat_endpoint
    monkeypatch.setattr(CallbackEndpoint, "setup_heartbeat_endpoint", getattr(current, "__wrapped__", current))
    # moto as shipped: the heartbeat knows nothing of the answer and waits until it times out.
    received, waited = _answered_then_waited(heartbeat_seconds=0.3)
    assert not received and waited >= 0.25

    _keep_answers_that_come_before_the_wait()
    patched = CallbackEndpoint.setup_heartbeat_endpoint
    _keep_answers_that_come_before_the_wait()  # every runtime applies it: it wraps once
    assert CallbackEndpoint.setup_heartbeat_endpoint is patched
    received, _ = _answered_then_waited(heartbeat_seconds=600)
    assert received, "the interpreter reads the stored answer instead of waiting out the heartbeat"

    # An answer after the wait began still signals it, as before.
    endpoint = CallbackEndpoint(callback_id="later")
    heartbeat = endpoint.setup_heartbeat_endpoint(heartbeat_seconds=600)
    endpoint.notify(CallbackOutcomeSuccess(callback_id="later", output="{}"))
    assert heartbeat.clear_and_wait() and endpoint.get_outcome() is not None
