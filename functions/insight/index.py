"""Lambda entry point: the handler lives in the medialens layer (medialens.handlers.insight)."""

from medialens.handlers.insight import handler

__all__ = ["handler"]
