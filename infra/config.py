"""Environments from ``cdk.json`` context: ``medialens:environments`` → {name: settings}.

``cdk synth -c env=dev`` picks one; any value can be overridden for one run with
``-c medialens:overrides='{"gpu": {"maxInstances": 4}}'`` (deep-merged). Validation happens here,
at synth, so a typo in cdk.json fails with the field's name instead of as a CloudFormation error.
"""

from __future__ import annotations

import json
import os
from enum import StrEnum
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

ENVIRONMENTS_KEY = "medialens:environments"
OVERRIDES_KEY = "medialens:overrides"
ENV_KEY = "env"
DEFAULT_ENV = "dev"


class _Model(BaseModel):
    # camelCase in cdk.json like the rest of CDK's context; unknown keys are errors (typos).
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class SearchFlavour(StrEnum):
    DOMAIN = "domain"  # managed OpenSearch domain (instances, EBS): cheapest small and always-on
    SERVERLESS = "serverless"  # OpenSearch Serverless VECTORSEARCH collection: no capacity to manage


class StorageConfig(_Model):
    drop_transition_days: int = Field(30, ge=1, description="Drop objects move to Intelligent-Tiering.")
    drop_noncurrent_expiration_days: int = Field(30, ge=1, description="Overwritten drop versions expire.")
    dead_letter_archive_expiration_days: int = Field(90, ge=1)
    access_log_expiration_days: int = Field(365, ge=1)
    incomplete_upload_abort_days: int = Field(7, ge=1)


class LambdaConfig(_Model):
    # SQS event sources' maximum concurrency; ingest and light also reserve exactly that much, so
    # they can neither starve the account nor be throttled below it (throttled SQS deliveries
    # count as receives and would dead-letter work).
    ingest_concurrency: int = Field(5, ge=2, description="Bounds the StartExecution rate.")
    light_concurrency: int = Field(20, ge=2, description="Bounds index writes and DynamoDB load.")
    dlq_concurrency: int = Field(2, ge=2)
    reserve_concurrency: bool = Field(True, description="Off for new accounts whose quota is 10.")
    api_reserved_concurrency: int | None = Field(20, ge=1, description="Caps search cost; None: unreserved.")
    light_memory_mb: int = Field(2048, ge=128, le=10240)
    light_timeout_s: int = Field(300, ge=10, le=900)
    api_memory_mb: int = Field(2048, ge=128, le=10240)
    # The voice routes (POST /speech, /search/voice): the Piper voice, Whisper and the query
    # embedder in one container image; ~1 GB resident once loaded, more memory is more CPU.
    voice_memory_mb: int = Field(4096, ge=1024, le=10240)
    voice_reserved_concurrency: int | None = Field(5, ge=1, description="Caps voice cost; None: unreserved.")


class GpuConfig(_Model):
    instance_types: list[str] = Field(default_factory=lambda: ["g5.xlarge"], min_length=1)
    spot: bool = False
    max_instances: int = Field(2, ge=1)
    max_tasks: int = Field(2, ge=1)
    # Backlog per running task above which another task starts.
    messages_per_task: int = Field(200, ge=1)
    scale_in_after_minutes: int = Field(15, ge=1, description="Idle minutes before workers stop.")
    task_memory_mib: int = Field(12288, ge=1024)
    root_volume_gb: int = Field(100, ge=30)
    sagemaker_async: bool = Field(
        False, description="Run heavy steps on a SageMaker async endpoint (fed by a forwarder) instead of ECS."
    )
    sagemaker_instance_type: str = "ml.g5.xlarge"


class SearchConfig(_Model):
    flavour: SearchFlavour = SearchFlavour.DOMAIN
    instance_type: str = "t3.small.search"
    instance_count: int = Field(1, ge=1)
    volume_gb: int = Field(20, ge=10)
    standby_replicas: bool = Field(False, description="Serverless: redundant OCUs across AZs.")


class ApiConfig(_Model):
    rate_limit: float = Field(20, gt=0, description="Steady requests per second for the stage.")
    burst_limit: int = Field(40, ge=1)
    upload_origins: list[str] = Field(
        default_factory=lambda: ["http://localhost:8765", "http://127.0.0.1:8765"],
        description="Browser origins allowed to send uploads straight to the drop bucket with presigned requests: "
        "where the page is served (`medialens serve` against this environment, by default); []: none.",
    )


class AlarmConfig(_Model):
    email: str | None = None
    oldest_message_age_s: dict[str, int] = Field(
        default_factory=lambda: {"ingest": 300, "light": 900, "heavy": 1800},
        description="Per work queue: the age of its oldest message that pages.",
    )
    lambda_error_rate_percent: float = Field(5.0, gt=0)
    execution_p95_s: int = Field(1800, ge=1, description="Whole-asset latency (ExecutionTime p95).")
    stage_p95_ms: int = Field(300_000, ge=1, description="Per-stage latency (StageLatency p95).")
    failed_execution_percent: float = Field(25.0, gt=0, le=100, description="Share of executions ending FAILED.")
    api_p95_ms: int = Field(3000, ge=1)
    model_error_rate_percent: float = Field(
        20, gt=0, le=100, description="A heavy stage whose calls failed this often over a day raises an alarm."
    )


class NetworkConfig(_Model):
    # 0: GPU hosts live in public subnets (no inbound rules) and reach AWS APIs directly: saves
    # the NAT gateway's ~$33/month plus data charges. >0: private subnets behind NAT gateways.
    nat_gateways: int = Field(0, ge=0, le=2)
    max_azs: int = Field(2, ge=2, le=3)


class EnvironmentConfig(_Model):
    name: str = ""
    account: str | None = Field(None, description="None: the CLI's account (CDK_DEFAULT_ACCOUNT).")
    region: str | None = Field(None, description="None: the CLI's region (CDK_DEFAULT_REGION).")
    retain_data: bool = Field(False, description="Retain buckets, tables and the index on delete.")
    termination_protection: bool = False
    log_retention_days: int = 14
    storage: StorageConfig = Field(default_factory=StorageConfig)
    functions: LambdaConfig = Field(default_factory=LambdaConfig, alias="lambda")
    gpu: GpuConfig = Field(default_factory=GpuConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    alarms: AlarmConfig = Field(default_factory=AlarmConfig)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    powertools_layer_version: str = Field("latest", description="'latest' or a release such as 3.37.0.")
    tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> EnvironmentConfig:
        if self.log_retention_days not in _LOG_RETENTION_DAYS:
            raise ValueError(f"logRetentionDays must be one of {sorted(_LOG_RETENTION_DAYS)}")
        unknown = set(self.alarms.oldest_message_age_s) - {"ingest", "light", "heavy"}
        if unknown:
            raise ValueError(f"alarms.oldestMessageAgeS names unknown queues: {sorted(unknown)}")
        return self

    @property
    def removal_policy(self) -> cdk.RemovalPolicy:
        return cdk.RemovalPolicy.RETAIN if self.retain_data else cdk.RemovalPolicy.DESTROY

    @property
    def log_retention(self) -> logs.RetentionDays:
        return _LOG_RETENTION_DAYS[self.log_retention_days]

    @property
    def prefix(self) -> str:
        return f"medialens-{self.name}"

    def cdk_environment(self) -> cdk.Environment:
        return cdk.Environment(
            account=self.account or os.environ.get("CDK_DEFAULT_ACCOUNT"),
            region=self.region or os.environ.get("CDK_DEFAULT_REGION"),
        )


# CloudWatch Logs accepts only these retention periods.
_LOG_RETENTION_DAYS = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = (
            _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged


def _context_json(node: Any, key: str) -> Any:
    value = node.try_get_context(key)
    # -c key=value on the command line arrives as a string.
    return json.loads(value) if isinstance(value, str) else value


def environment_names(app: cdk.App) -> list[str]:
    return sorted(_context_json(app.node, ENVIRONMENTS_KEY) or {})


def load_environment(app: cdk.App, name: str | None = None) -> EnvironmentConfig:
    environments: dict[str, Any] = _context_json(app.node, ENVIRONMENTS_KEY) or {}
    name = name or app.node.try_get_context(ENV_KEY) or DEFAULT_ENV
    if name not in environments:
        raise ValueError(f"unknown environment {name!r}: cdk.json defines {sorted(environments)}")
    raw = _merge(environments[name], _context_json(app.node, OVERRIDES_KEY) or {})
    return EnvironmentConfig.model_validate({**raw, "name": name})
