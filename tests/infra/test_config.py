"""cdk.json environments: validated at synth, overridable per run."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from infra.config import ENVIRONMENTS_KEY, OVERRIDES_KEY, SearchFlavour, environment_names, load_environment
from pydantic import ValidationError

pytestmark = pytest.mark.infra

CONTEXT = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"]


def app(**context: object) -> cdk.App:
    return cdk.App(context={**CONTEXT, **context})


def test_dev_and_prod_are_defined_with_their_search_flavours() -> None:
    assert environment_names(app()) == ["dev", "prod"]
    assert load_environment(app(env="dev")).search.flavour is SearchFlavour.DOMAIN
    prod = load_environment(app(env="prod"))
    assert prod.search.flavour is SearchFlavour.SERVERLESS and prod.retain_data and prod.termination_protection


def test_default_environment_is_dev() -> None:
    assert load_environment(app()).name == "dev"


def test_unknown_environment_and_typos_fail() -> None:
    with pytest.raises(ValueError, match="unknown environment 'qa'"):
        load_environment(app(env="qa"))
    environments = json.loads(json.dumps(CONTEXT[ENVIRONMENTS_KEY]))
    environments["dev"]["gpu"]["maxInstance"] = 3  # typo of maxInstances
    with pytest.raises(ValidationError, match="maxInstance"):
        load_environment(app(**{ENVIRONMENTS_KEY: environments}))
    environments = json.loads(json.dumps(CONTEXT[ENVIRONMENTS_KEY]))
    environments["dev"]["logRetentionDays"] = 10
    with pytest.raises(ValidationError, match="logRetentionDays"):
        load_environment(app(**{ENVIRONMENTS_KEY: environments}))


def test_overrides_deep_merge_from_the_command_line() -> None:
    # `-c medialens:overrides=...` arrives as a string.
    config = load_environment(app(env="dev", **{OVERRIDES_KEY: '{"gpu": {"maxInstances": 4}}'}))
    assert config.gpu.max_instances == 4
    assert config.gpu.instance_types == CONTEXT[ENVIRONMENTS_KEY]["dev"]["gpu"]["instanceTypes"]
