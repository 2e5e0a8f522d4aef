"""Lambda entry point: the handler lives in the medialens layer (medialens.handlers.dlq)."""

from medialens.handlers.dlq import handler

__all__ = ["handler"]
