"""The CDK app: ``cdk synth -c env=dev`` (cdk.json runs ``python -m infra.app``).

Two stacks per environment, ``medialens-<env>-data`` and ``medialens-<env>-pipeline``, checked
by cdk-nag's AwsSolutions pack on every synth.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script (python infra/app.py): import as the package
    repo_root = str(Path(__file__).resolve().parents[1])
    # infra/ itself must not be on sys.path: infra/constructs would shadow the constructs library.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    sys.path.insert(0, repo_root)

import aws_cdk as cdk

from infra.config import EnvironmentConfig, load_environment
from infra.nag import add_checks
from infra.stacks.data import DataStack
from infra.stacks.pipeline import PipelineStack


def add_environment(app: cdk.App, config: EnvironmentConfig) -> tuple[DataStack, PipelineStack]:
    data = DataStack(app, f"{config.prefix}-data", config=config)
    pipeline = PipelineStack(app, f"{config.prefix}-pipeline", config=config, data=data)
    for stack in (data, pipeline):
        cdk.Tags.of(stack).add("project", "medialens")
        cdk.Tags.of(stack).add("environment", config.name)
        for key, value in config.tags.items():
            cdk.Tags.of(stack).add(key, value)
    return data, pipeline


def build_app(app: cdk.App | None = None) -> cdk.App:
    app = app or cdk.App()
    add_environment(app, load_environment(app))
    add_checks(app)
    return app


def main() -> None:
    build_app().synth()


if __name__ == "__main__":
    main()
