"""Schemathesis against the served API: generated requests, valid and not, for every operation of
the committed OpenAPI document; no answer may be a 5xx or break the document's own schemas."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from medialens.api.app import openapi_document
from medialens.local.server import LocalServer
from medialens.services import set_services
from medialens.settings import Settings

from ..conftest import MODEL_CACHE

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Every documented refusal counts as rejecting bad data (413 is an oversized query's answer); a
# request the generator thinks valid may still be refused: its cursor is opaque and any random
# string is a cursor no page issued.
CHECKS = {
    "negative_data_rejection": {"expected-statuses": ["400", "404", "405", "413", "415"]},
    "positive_data_acceptance": {"enabled": False},
}
schema = schemathesis.openapi.from_dict(
    openapi_document(), config=schemathesis.config.SchemathesisConfig.from_dict({"checks": CHECKS})
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the module (module fixtures run before the per-test isolation: this one
    isolates itself)."""
    with pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if name.startswith("MEDIALENS_") or name == "AWS_ENDPOINT_URL":
                env.delenv(name)
        env.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        env.setenv("POWERTOOLS_METRICS_DISABLED", "true")
        home: Path = tmp_path_factory.mktemp("fuzz-home")
        with LocalServer(Settings(home=home, model_cache=MODEL_CACHE), port=0, run_pipeline=False) as server:
            set_services(server.services)
            yield f"{server.url}api"
            set_services(None)


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_generated_request_breaks_the_api(case: Any, served: str) -> None:
    case.call_and_validate(base_url=served)
