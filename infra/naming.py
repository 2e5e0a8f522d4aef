"""Physical names of the data stack's resources, computed identically in both stacks.

The pipeline stack addresses buckets, tables and the domain by these names instead of by
cross-stack tokens: its IAM policies then read ``arn:...:s3:::medialens-dev-drop-<account>-<region>/*``
(reviewable, and stable for cdk-nag acknowledgments), and the data stack exports nothing that
would pin its resources against replacement.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk

from infra.config import EnvironmentConfig


@dataclass(frozen=True)
class DataNames:
    drop_bucket: str
    artifacts_bucket: str
    assets_table: str
    search: str  # OpenSearch domain or Serverless collection name

    @classmethod
    def of(cls, stack: cdk.Stack, config: EnvironmentConfig) -> DataNames:
        # Bucket names are global: the account and region make them unique (<= 63 characters).
        suffix = f"{stack.account}-{stack.region}"
        return cls(
            drop_bucket=f"{config.prefix}-drop-{suffix}",
            artifacts_bucket=f"{config.prefix}-artifacts-{suffix}",
            assets_table=f"{config.prefix}-assets",
            search=config.prefix,
        )
