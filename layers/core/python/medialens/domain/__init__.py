"""Pydantic models for everything that crosses a boundary: assets, moments, searches, and the
workflow's step messages with every step's input and output (``steps``). Imports nothing else of
medialens."""
