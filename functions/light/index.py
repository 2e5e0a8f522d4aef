"""Lambda entry point: the handler lives in the medialens layer (medialens.handlers.light)."""

from medialens.handlers.light import handler

__all__ = ["handler"]
