"""What a cold `medialens search` imports: a keyword search reads no model and needs neither the
AWS SDK nor onnxruntime; one a running server answers opens no index and builds no services;
the CLI's other commands import their own dependencies. (How long it takes is measured by
`scripts/bench_search.py --cold`, never asserted here.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from medialens.local.announce import announce, withdraw

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
# What a search answered by a running server needs none of: the index, the services, numpy.
NOT_WHEN_A_SERVER_ANSWERS = (*NOT_FOR_KEYWORD_SEARCH, "lancedb", "pyarrow", "numpy", "medialens.services")

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


def _run(
    arguments: list[str], home: Path, watched: tuple[str, ...] = NOT_FOR_KEYWORD_SEARCH
) -> tuple[int, list[str], str]:
    environment = dict(os.environ, MEDIALENS_HOME=str(home))
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *arguments],
        input=json.dumps(watched),
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


class _SearchAnswer(BaseHTTPRequestHandler):
    """A server's answer to any search: one hit."""

    HIT = {"asset_id": "a" * 64, "source": "s3://drop/incoming/a.pdf", "media_type": "document"}
    HIT |= {
        "modality": "text",
        "start": None,
        "end": None,
        "page": 2,
        "language": "en",
        "text": "25 days",
        "score": 1.0,
    }

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"hits": [self.HIT], "took_ms": 1.5}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def announced_server(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A server announced for a fresh home (by this process, which is alive)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SearchAnswer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    home, url = tmp_path / "home", f"http://127.0.0.1:{server.server_address[1]}/"
    announce(home, url)
    yield home, url
    withdraw(home)
    server.shutdown()
    server.server_close()


def test_a_search_a_running_server_answers_opens_no_index_and_builds_no_services(
    announced_server: tuple[Path, str],
) -> None:
    home, url = announced_server
    code, imported, output = _run(["search", "vacation days", "--json"], home, NOT_WHEN_A_SERVER_ANSWERS)
    answer = json.loads(output)
    assert code == 0 and answer["answered_by"] == url and answer["hits"][0]["text"] == "25 days"
    assert imported == []
