"""Wires adapters to the active profile. Handlers and workers ask for ``get_services()``; each
adapter is built on first use so a Lambda only pays for what its step touches."""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING

from medialens import aws
from medialens.settings import IndexBackend, Profile, Settings, get_settings

if TYPE_CHECKING:
    from medialens.adapters.index.base import MomentIndex
    from medialens.adapters.registry.base import AssetRegistry
    from medialens.adapters.storage.base import BlobStore
    from medialens.adapters.storage.filesystem import ObjectCreatedHook
    from medialens.ml.base import TextEmbedder
    from medialens.search import SearchService


class Services:
    def __init__(self, settings: Settings, on_drop_object_created: ObjectCreatedHook | None = None) -> None:
        self.settings = settings
        self._on_drop_object_created = on_drop_object_created
        # Index writes are serialised within a process: LanceDB commits are optimistic and two
        # threads merging into one table would conflict instead of queueing.
        self.index_write_lock = threading.Lock()

    @cached_property
    def blobs(self) -> BlobStore:
        if self.settings.profile is Profile.EMBEDDED:
            from medialens.adapters.storage.filesystem import FilesystemBlobStore

            drop_hook = self._on_drop_object_created
            drop_bucket, drop_prefix = self.settings.drop_bucket, self.settings.drop_prefix

            def notify(info: object) -> None:
                from medialens.adapters.storage.base import ObjectInfo

                if (
                    drop_hook is not None
                    and isinstance(info, ObjectInfo)
                    and info.bucket == drop_bucket
                    and info.key.startswith(drop_prefix)
                ):
                    drop_hook(info)

            return FilesystemBlobStore(self.settings.blobs_dir, on_created=notify)
        from medialens.adapters.storage.s3 import S3BlobStore

        return S3BlobStore(aws.s3(self.settings))

    @cached_property
    def registry(self) -> AssetRegistry:
        if self.settings.profile is Profile.EMBEDDED:
            from medialens.adapters.registry.sqlite import SqliteAssetRegistry

            return SqliteAssetRegistry(self.settings.registry_path)
        from medialens.adapters.registry.dynamodb import DynamoAssetRegistry

        return DynamoAssetRegistry(aws.dynamodb(self.settings), self.settings.assets_table)

    @cached_property
    def embedder(self) -> TextEmbedder:
        from medialens.ml.text_embedding import get_text_embedder

        return get_text_embedder(self.settings)

    @cached_property
    def index(self) -> MomentIndex:
        # The embedder's dimensions come from its manifest or packaged spec: no model load here,
        # so a keyword-only search never loads the model.
        if self.settings.index_backend is IndexBackend.OPENSEARCH or self.settings.opensearch_url:
            from medialens.adapters.index.opensearch import OpenSearchMomentIndex

            return OpenSearchMomentIndex.from_settings(self.settings, dimensions=self.embedder.dimensions)
        from medialens.adapters.index.lance import LanceMomentIndex

        return LanceMomentIndex(self.settings.index_dir, dimensions=self.embedder.dimensions)

    @cached_property
    def search(self) -> SearchService:
        from medialens.search import SearchService

        return SearchService(
            self.index,
            self.embedder,
            fusion=self.settings.search_fusion,
            alpha=self.settings.search_semantic_weight,
        )

    def artifact_uri(self, asset_id: str, *parts: str) -> str:
        from medialens.adapters.storage.base import join_uri

        return join_uri(self.settings.artifacts_bucket, "derived", asset_id, *parts)


_services: Services | None = None
_services_lock = threading.Lock()


def get_services() -> Services:
    global _services
    with _services_lock:
        if _services is None:
            _services = Services(get_settings())
        return _services


def set_services(services: Services | None) -> None:
    """The local runtime and tests install their own wiring (and None to reset)."""
    global _services
    with _services_lock:
        _services = services
