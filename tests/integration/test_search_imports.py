"""What a cold `medialens search` imports: a keyword search reads no model and needs neither the
AWS SDK nor onnxruntime; the CLI's other commands import their own dependencies. (How long it
takes is measured by `scripts/bench_search.py --cold`, never asserted here.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

# Imported by commands other than search, or by the semantic modes only.
NOT_FOR_KEYWORD_SEARCH = (
    "boto3",
    "botocore",
    "aws_lambda_powertools",
    "onnxruntime",
    "tokenizers",
    "py3langid",
    "PIL",
    "medialens.admission",
    "medialens.local.uploads",
    "medialens.local.runtime",
)

SCRIPT = """
import json, sys
from medialens.cli.main import app
try:
    app(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
else:
    code = 0
heavy = json.loads(sys.stdin.read())
print(json.dumps({"code": code, "imported": sorted(m for m in heavy if m in sys.modules)}), file=sys.stderr)
"""


def _run(arguments: list[str], home: Path) -> tuple[int, list[str], str]:
    environment = dict(os.environ, MEDIALENS_HOME=str(home))
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *arguments],
        input=json.dumps(NOT_FOR_KEYWORD_SEARCH),
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        timeout=120,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], report["imported"], done.stdout


def test_a_keyword_search_imports_no_model_runtime_and_no_aws_sdk(tmp_path: Path) -> None:
    code, imported, output = _run(["search", "vacation days", "--mode", "keyword", "--json"], tmp_path / "home")
    assert code == 0 and json.loads(output)["hits"] == []
    assert imported == []


def test_the_help_imports_none_of_them_either(tmp_path: Path) -> None:
    code, imported, _ = _run(["--help"], tmp_path / "home")
    assert code == 0 and imported == []
