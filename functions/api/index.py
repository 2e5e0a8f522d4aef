"""Lambda entry point: the handler lives in the medialens layer (medialens.handlers.api)."""

from medialens.handlers.api import handler

__all__ = ["handler"]
