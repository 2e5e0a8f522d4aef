"""Loads ``statemachines/analyze_asset.asl.json`` and fills its ``${...}`` placeholders, exactly as
CDK's DefinitionSubstitutions do on AWS."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
ASL_NAME = "analyze_asset.asl.json"
# The definition's own TimeoutSeconds (a test keeps the two equal): no run lasts longer, so an
# asset unfinished after it has no execution left.
WORKFLOW_TIMEOUT_S = 43200


def asl_path() -> Path:
    """The repository's file: local profiles run from a checkout (the library is installed editable)."""
    parents = Path(__file__).resolve().parents
    path = parents[5] / "statemachines" / ASL_NAME if len(parents) > 5 else Path(ASL_NAME)
    if not path.is_file():
        raise FileNotFoundError(f"{ASL_NAME} not found at {path}: run medialens from a checkout of the repository")
    return path


def placeholders(text: str | None = None) -> set[str]:
    return set(PLACEHOLDER.findall(text if text is not None else asl_path().read_text()))


def render(substitutions: dict[str, str], text: str | None = None) -> str:
    """The definition with every placeholder filled; a missing value is an error, not a blank."""
    source = text if text is not None else asl_path().read_text()
    missing = placeholders(source) - substitutions.keys()
    if missing:
        raise KeyError(f"no value for state machine placeholders: {sorted(missing)}")
    rendered = PLACEHOLDER.sub(lambda m: substitutions[m.group(1)], source)
    json.loads(rendered)  # fail here, not inside Step Functions, if a value broke the JSON
    return rendered


def load(substitutions: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(render(substitutions))
    return result
