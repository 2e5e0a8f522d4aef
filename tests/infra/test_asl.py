"""Lint of statemachines/*.asl.json and of the placeholder substitution CDK performs.

The unit tests in tests/unit/test_state_machine_definition.py check the pipeline's semantics
(timeouts, retries, failure paths); these check what Step Functions itself would reject or
silently mis-run: invalid JSON, JSONata, dangling targets and states nothing reaches.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from infra.config import EnvironmentConfig
from infra.constructs.queues import Queues
from infra.constructs.workflow import definition_substitutions, substitution_values

from medialens.orchestration import asl

pytestmark = pytest.mark.infra

REPO_ROOT = Path(__file__).resolve().parents[2]
ASL_FILES = sorted((REPO_ROOT / "statemachines").glob("*.asl.json"))
TERMINAL = {"Succeed", "Fail"}
JSONATA_ONLY_FIELDS = {"Arguments", "Output"}


def scopes(definition: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every {StartAt, States} scope: the top level, Map item processors, Parallel branches."""
    yield path or "<top>", definition
    for name, state in definition["States"].items():
        if state["Type"] == "Map":
            yield from scopes(state.get("ItemProcessor") or state["Iterator"], f"{path}/{name}")
        for n, branch in enumerate(state.get("Branches", [])):
            yield from scopes(branch, f"{path}/{name}[{n}]")


def targets(state: dict[str, Any]) -> list[str]:
    found = [state[key] for key in ("Next", "Default") if key in state]
    found += [choice["Next"] for choice in state.get("Choices", [])]
    found += [catcher["Next"] for catcher in state.get("Catch", [])]
    return found


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


@pytest.fixture(params=ASL_FILES, ids=lambda p: p.name)
def definition(request: pytest.FixtureRequest) -> dict[str, Any]:
    text = Path(request.param).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)  # valid JSON before any substitution
    return loaded


def test_there_is_a_definition_to_lint() -> None:
    assert asl.ASL_NAME in {p.name for p in ASL_FILES}


def test_jsonpath_only(definition: dict[str, Any]) -> None:
    for key, value in walk(definition):
        if key == "QueryLanguage":
            assert value == "JSONPath", "JSONata does not run on the local interpreter (moto)"
        assert key not in JSONATA_ONLY_FIELDS, f"{key} is a JSONata field"
        if isinstance(value, str):
            assert not (value.startswith("{%") and value.endswith("%}")), f"JSONata expression in {key}: {value}"


def test_every_target_exists_in_its_scope(definition: dict[str, Any]) -> None:
    for path, scope in scopes(definition):
        states = scope["States"]
        assert scope["StartAt"] in states, path
        for name, state in states.items():
            for target in targets(state):
                assert target in states, f"{path}/{name} -> {target}"


def test_every_state_ends_or_continues(definition: dict[str, Any]) -> None:
    for path, scope in scopes(definition):
        for name, state in scope["States"].items():
            kind = state["Type"]
            if kind in TERMINAL:
                assert "Next" not in state and "End" not in state, f"{path}/{name}"
            elif kind == "Choice":
                assert state["Choices"], f"{path}/{name}"
            else:
                assert ("Next" in state) != bool(state.get("End")), f"{path}/{name} needs exactly one of Next/End"


def test_no_state_is_unreachable(definition: dict[str, Any]) -> None:
    for path, scope in scopes(definition):
        states = scope["States"]
        seen, pending = set(), [scope["StartAt"]]
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            seen.add(name)
            pending += targets(states[name])
        assert seen == set(states), f"{path}: unreachable {sorted(set(states) - seen)}"


def test_lint_catches_what_it_should() -> None:
    broken = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Next": "Missing"},
            "Orphan": {"Type": "Succeed"},
        },
    }
    with pytest.raises(AssertionError, match="Missing"):
        test_every_target_exists_in_its_scope(broken)
    broken["States"]["A"]["Next"] = "Orphan"
    broken["States"]["B"] = {"Type": "Succeed"}
    with pytest.raises(AssertionError, match="unreachable"):
        test_no_state_is_unreachable(broken)
    with pytest.raises(AssertionError, match="JSONata"):
        test_jsonpath_only({"QueryLanguage": "JSONata", "StartAt": "A", "States": {}})


# --- placeholders ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def substitution_scope() -> Queues:
    stack = cdk.Stack(cdk.App(), "Placeholders")
    return Queues(stack, "Queues", config=EnvironmentConfig(name="test"))


def test_every_placeholder_has_a_value(substitution_scope: Queues) -> None:
    bucket = cdk.aws_s3.Bucket.from_bucket_name(substitution_scope, "Artifacts", "artifacts")
    values, used = definition_substitutions(substitution_values(substitution_scope, bucket))
    assert set(values) == asl.placeholders() and len(used) == len(values)
    # Filled with plain strings, the definition renders to valid JSON (what Step Functions gets).
    rendered = asl.render({name: f"value-of-{name}" for name in values})
    assert "${" not in rendered


def test_an_unknown_placeholder_fails_synth(substitution_scope: Queues, tmp_path: Path) -> None:
    source = json.loads((REPO_ROOT / "statemachines" / asl.ASL_NAME).read_text())
    source["States"]["Probe"]["Parameters"]["QueueUrl"] = "${GpuQueueUrl}"
    changed = tmp_path / asl.ASL_NAME
    changed.write_text(json.dumps(source))
    bucket = cdk.aws_s3.Bucket.from_bucket_name(substitution_scope, "Artifacts2", "artifacts")
    with pytest.raises(ValueError, match="GpuQueueUrl"):
        definition_substitutions(substitution_values(substitution_scope, bucket), changed)
