"""`cdk synth` through the CLI and cdk.json's app command, as a fresh clone runs it after
`make install` (no Docker engine; --exclusively on the data stack skips the layer bundling)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.infra, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
CDK = REPO_ROOT / "node_modules" / ".bin" / "cdk"


def test_cdk_cli_synthesizes_dev_from_cdk_json(tmp_path: Path) -> None:
    assert CDK.exists(), "the aws-cdk CLI is missing: run `make node-deps` (make test does)"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CDK_DEFAULT_", "AWS_"))},
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
    }
    result = subprocess.run(
        [
            str(CDK),
            "synth",
            "medialens-dev-data",
            "--exclusively",
            "-c",
            "env=dev",
            "-o",
            str(tmp_path),
            "--quiet",
            "--no-notices",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    stacks = {
        name for name, artifact in manifest["artifacts"].items() if artifact["type"] == "aws:cloudformation:stack"
    }
    assert stacks == {"medialens-dev-data", "medialens-dev-pipeline"}
    assert (
        not (REPO_ROOT / "cdk.context.json").exists() or json.loads((REPO_ROOT / "cdk.context.json").read_text()) == {}
    )
