"""boto3 clients configured once per process, pointed at AWS_ENDPOINT_URL when one is set."""

from __future__ import annotations

import os
import threading
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from medialens.settings import Settings, get_settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient

_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=32)
_lock = threading.Lock()
_clients: dict[tuple[str, str | None, str], Any] = {}


def client(service: str, settings: Settings | None = None) -> Any:
    """A cached client; sessions are not thread-safe but clients are, so share clients."""
    settings = settings or get_settings()
    key = (service, settings.aws_endpoint_url, settings.region)
    with _lock:
        if key not in _clients:
            # The embedded profile talks only to its own in-process moto: it needs no account, so it
            # must not depend on (or leak) whatever credentials the user has configured.
            local = settings.profile_override is not None and settings.profile_override.value == "embedded"
            session = (
                boto3.session.Session(aws_access_key_id="medialens-local", aws_secret_access_key="medialens-local")
                if local
                else boto3.session.Session()
            )
            # A service-specific AWS_ENDPOINT_URL_<SERVICE> wins over the global one (botocore's own
            # rule), so one service can live elsewhere (e.g. DynamoDB on another emulator).
            specific = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}")
            _clients[key] = session.client(
                service,  # type: ignore[call-overload]
                region_name=settings.region,
                endpoint_url=specific or settings.aws_endpoint_url,
                config=_BOTO_CONFIG,
            )
        return _clients[key]


def reset_clients() -> None:
    with _lock:
        _clients.clear()
    _presigning_client.cache_clear()


@cache
def _presigning_client(endpoint_url: str | None, region: str) -> S3Client:
    client: S3Client = boto3.session.Session().client(
        "s3", region_name=region, endpoint_url=endpoint_url, config=Config(signature_version="s3v4")
    )
    return client


def presigning_s3(settings: Settings) -> S3Client:
    """An S3 client that signs URLs with SigV4: the default can still be SigV2 query strings,
    which SSE-KMS objects and newer regions refuse. Presigning itself makes no request."""
    return _presigning_client(settings.aws_endpoint_url, settings.region)


def s3(settings: Settings | None = None) -> S3Client:
    return client("s3", settings)  # type: ignore[no-any-return]


def sqs(settings: Settings | None = None) -> SQSClient:
    return client("sqs", settings)  # type: ignore[no-any-return]


def stepfunctions(settings: Settings | None = None) -> SFNClient:
    return client("stepfunctions", settings)  # type: ignore[no-any-return]


def dynamodb(settings: Settings | None = None) -> DynamoDBClient:
    return client("dynamodb", settings)  # type: ignore[no-any-return]


def events(settings: Settings | None = None) -> EventBridgeClient:
    return client("events", settings)  # type: ignore[no-any-return]


def sagemaker_runtime(settings: Settings | None = None) -> Any:
    return client("sagemaker-runtime", settings)


_queue_urls: dict[tuple[str | None, str], str] = {}


def queue_url(name_or_url: str, settings: Settings | None = None) -> str:
    """CDK passes queue URLs; local profiles pass names and resolve them once."""
    if name_or_url.startswith(("http://", "https://")):
        return name_or_url
    settings = settings or get_settings()
    key = (settings.aws_endpoint_url, name_or_url)
    if key not in _queue_urls:
        _queue_urls[key] = sqs(settings).get_queue_url(QueueName=name_or_url)["QueueUrl"]
    return _queue_urls[key]


def reset_queue_urls() -> None:
    _queue_urls.clear()
