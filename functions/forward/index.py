"""Lambda entry point: the handler lives in the medialens layer (medialens.handlers.forward)."""

from medialens.handlers.forward import handler

__all__ = ["handler"]
