"""The asset registry: DynamoDB on AWS, SQLite in the embedded profile."""

from medialens.adapters.registry.base import AssetRegistry, ConcurrentUpdateError

__all__ = ["AssetRegistry", "ConcurrentUpdateError"]
