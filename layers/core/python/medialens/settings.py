"""Settings from the environment, shared by Lambda, workers and the local CLI.

On AWS every value comes from the function's environment (CDK sets it). Locally the defaults
describe the embedded profile under ``MEDIALENS_HOME``; setting ``AWS_ENDPOINT_URL`` switches
every adapter to its AWS implementation (LocalStack, a moto server).
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from medialens import PIPELINE_VERSION


class Profile(StrEnum):
    EMBEDDED = "embedded"  # file blobs, SQLite, LanceDB, in-process moto orchestration
    AWS = "aws"  # S3, DynamoDB, SQS, Step Functions: deployed, or emulated via AWS_ENDPOINT_URL


class IndexBackend(StrEnum):
    LANCEDB = "lancedb"
    OPENSEARCH = "opensearch"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDIALENS_", extra="ignore", populate_by_name=True)

    home: Path = Field(default=Path(".medialens"), description="Local state: blobs, registry, index, models.")
    profile_override: Profile | None = Field(default=None, validation_alias="MEDIALENS_PROFILE")

    aws_endpoint_url: str | None = Field(default=None, validation_alias="AWS_ENDPOINT_URL")
    region: str = Field(
        default="us-east-1",
        validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION", "MEDIALENS_REGION"),
    )

    # Resource names: CDK passes the deployed names; locally they are created with these names.
    drop_bucket: str = "medialens-drop"
    drop_prefix: str = "incoming/"
    artifacts_bucket: str = "medialens-artifacts"
    assets_table: str = "medialens-assets"
    ingest_queue: str = "medialens-ingest"
    light_queue: str = "medialens-light"
    heavy_queue: str = "medialens-heavy"
    state_machine_name: str = "medialens-analyze-asset"
    state_machine_arn: str | None = None
    max_receive_count: int = 3

    index_backend: IndexBackend = IndexBackend.LANCEDB
    index_name: str = "medialens-moments"
    opensearch_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENSEARCH_URL", "MEDIALENS_OPENSEARCH_URL")
    )

    # Models: resolved by name and version from the model store.
    model_cache: Path | None = Field(default=None, description="Defaults to <home>/models.")
    model_store_uri: str | None = Field(default=None, description="s3://bucket/prefix of built models on AWS.")
    text_embedding_model: str = "all-minilm-l6-v2"
    text_embedding_quantization: str = "int8"

    # Search. Semantic weight 0.8: on the sample corpus's paraphrased questions the answer ranks
    # 1,1,1,1,2,2 against 1,1,2,1,3,3 at 0.5 (min-max BM25 lifts weak keyword matches to 1.0).
    search_fusion: str = "weighted"
    search_semantic_weight: float = Field(default=0.8, ge=0.0, le=1.0)

    # Document analysis.
    passage_words: int = 120
    passage_overlap_words: int = 30
    embed_batch_passages: int = 256

    # Workers.
    worker_batch_size: int = 10
    visibility_timeout_s: int = 120
    pipeline_version: str = PIPELINE_VERSION

    @property
    def profile(self) -> Profile:
        if self.profile_override is not None:
            return self.profile_override
        return Profile.AWS if self.aws_endpoint_url else Profile.EMBEDDED

    @property
    def models_dir(self) -> Path:
        return self.model_cache or self.home / "models"

    @property
    def blobs_dir(self) -> Path:
        return self.home / "blobs"

    @property
    def registry_path(self) -> Path:
        return self.home / "registry.sqlite3"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings; tests and the CLI call ``get_settings.cache_clear()`` after changing env."""
    return Settings()
