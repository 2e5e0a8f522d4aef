"""Error taxonomy shared by workers and the state machine.

Each class carries the Step Functions error name a worker reports through SendTaskFailure; the
state machine retries only the transient ones, so a bad file fails fast with its reason.
"""

from __future__ import annotations


class MediaLensError(Exception):
    """Base class: ``error_name`` is what the state machine's Retry/Catch match on."""

    error_name = "MediaLens.Error"
    retryable = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidMediaError(MediaLensError):
    """The input itself is unusable (corrupt, empty, truncated, mislabelled): never retried."""

    error_name = "MediaLens.InvalidMedia"


class UnsupportedMediaError(MediaLensError):
    """A readable file of a kind no branch analyses."""

    error_name = "MediaLens.UnsupportedMediaType"


class TransientError(MediaLensError):
    """A dependency hiccup (throttling, a busy index): the state machine retries with backoff."""

    error_name = "MediaLens.Transient"
    retryable = True


class DeadLetteredError(MediaLensError):
    """The step's message used up its receives: the DLQ handler fails the waiting task."""

    error_name = "MediaLens.DeadLettered"


class ConfigurationError(MediaLensError):
    """The deployment is missing something (a model, a queue URL); an operator must act."""

    error_name = "MediaLens.Configuration"


class StepInputError(MediaLensError):
    """A step message whose input does not match the step's model: the state machine and the
    code disagree (a deployment mismatch or a bug), so it is an internal error, retried once."""

    error_name = "MediaLens.Internal"
