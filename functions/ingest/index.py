"""Lambda entry point: the handler lives in the medialens layer (medialens.handlers.ingest)."""

from medialens.handlers.ingest import handler

__all__ = ["handler"]
