"""The stateful stack: buckets, DynamoDB tables and the index. It changes rarely, can be
termination-protected, and the pipeline stack can be replaced without touching data."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from infra.config import EnvironmentConfig
from infra.constructs.registry import Registry
from infra.constructs.search import Search
from infra.constructs.storage import Storage, model_store_uri
from infra.naming import DataNames


class DataStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: object) -> None:
        super().__init__(
            scope,
            construct_id,
            env=config.cdk_environment(),
            termination_protection=config.termination_protection,
            description=f"medialens {config.name}: media, artifacts, registry and search index",
            **kwargs,  # type: ignore[arg-type]
        )
        self.names = DataNames.of(self, config)
        self.storage = Storage(self, "Storage", config=config, names=self.names)
        self.registry = Registry(self, "Registry", config=config, names=self.names)
        self.search = Search(self, "Search", config=config, name=self.names.search)
        cdk.CfnOutput(self, "DropBucket", value=self.storage.drop.bucket_name)
        cdk.CfnOutput(self, "ArtifactsBucket", value=self.storage.artifacts.bucket_name)
        cdk.CfnOutput(self, "ModelStoreUri", value=model_store_uri(self.storage.artifacts.bucket_name))
        cdk.CfnOutput(self, "AssetsTable", value=self.registry.assets.table_name)
        cdk.CfnOutput(self, "OpenSearchUrl", value=self.search.url)
