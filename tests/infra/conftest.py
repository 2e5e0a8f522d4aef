"""Infra fixtures: every environment in cdk.json synthesized once per session, in-process, with
no Docker engine and without bundling the layer (one test in test_bundling.py does that).

jsii starts a Node process on first import of aws_cdk (~8-13 s); a session-scoped synth keeps
that to once.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import aws_cdk as cdk  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402
from infra.app import build_app  # noqa: E402
from infra.config import EnvironmentConfig, load_environment  # noqa: E402

CDK_JSON: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text(encoding="utf-8"))
ENVIRONMENTS = sorted(CDK_JSON["context"]["medialens:environments"])
BUNDLING_STACKS = "aws:cdk:bundling-stacks"  # [] stages assets without bundling


@dataclass(frozen=True)
class Synthesized:
    name: str
    config: EnvironmentConfig
    data: Template
    pipeline: Template
    outdir: Path

    def resources(self, resource_type: str, stack: str = "pipeline") -> dict[str, Any]:
        template = self.data if stack == "data" else self.pipeline
        found: dict[str, Any] = template.find_resources(resource_type)
        return found


def synth_app(outdir: Path, context: dict[str, Any]) -> cdk.App:
    """The app exactly as `cdk synth` builds it from cdk.json, plus ``context``."""
    app = cdk.App(context={**CDK_JSON["context"], **context}, outdir=str(outdir))
    return build_app(app)


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Synthesized]]:
    results: dict[str, Synthesized] = {}
    with pytest.MonkeyPatch.context() as patch:
        # A developer's CLI environment would make the templates account-specific.
        for name in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION"):
            patch.delenv(name, raising=False)
        for env in ENVIRONMENTS:
            outdir = tmp_path_factory.mktemp(f"cdk-{env}")
            app = synth_app(outdir, {"env": env, BUNDLING_STACKS: []})
            assembly = app.synth()  # raises ValidationFailed on an unacknowledged cdk-nag finding
            config = load_environment(app)
            results[env] = Synthesized(
                name=env,
                config=config,
                data=Template.from_json(assembly.get_stack_by_name(f"{config.prefix}-data").template),
                pipeline=Template.from_json(assembly.get_stack_by_name(f"{config.prefix}-pipeline").template),
                outdir=outdir,
            )
    yield results


@pytest.fixture(params=ENVIRONMENTS)
def env(request: pytest.FixtureRequest, synthesized: dict[str, Synthesized]) -> Synthesized:
    result: Synthesized = synthesized[request.param]
    return result
