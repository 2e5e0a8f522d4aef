"""Wires adapters to the active profile. Handlers and workers ask for ``get_services()``; each
adapter is built on first use so a Lambda only pays for what its step touches.

The backends are imported where they are chosen: each brings its own client library (LanceDB
and PyArrow, opensearch-py, onnxruntime, boto3), a process needs only its profile's, and the Lambda
layer does not even hold LanceDB. An embedded search never imports boto3.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from medialens.adapters.index.base import MomentIndex
from medialens.adapters.registry.base import AssetRegistry
from medialens.adapters.storage.base import BlobStore, ObjectInfo, join_uri, parse_uri
from medialens.domain.assets import SourceObject
from medialens.errors import ConfigurationError
from medialens.ml.base import TextEmbedder
from medialens.search import SearchService
from medialens.settings import IndexBackend, Profile, Settings, get_settings

if TYPE_CHECKING:  # a type only: the image-text runtime loads where one is configured
    from medialens.ml.clip import ImageTextEmbedder


class DropNotifier(Protocol):
    """What S3 → EventBridge does for the drop bucket: the embedded profile's outbox plays it."""

    def record(self, info: ObjectInfo) -> None: ...

    def record_removed(self, bucket: str, key: str) -> None: ...


class Services:
    def __init__(
        self,
        settings: Settings,
        drop_notifier: DropNotifier | None = None,
        runner_alive: Callable[[], bool] | None = None,
    ) -> None:
        """``drop_notifier``: told of every object created or removed under the drop prefix
        (``medialens.local.wiring`` attaches its outbox). ``runner_alive``: whether a process
        runs the pipeline now, where that can be false (the embedded profile)."""
        self.settings = settings
        self._drop_notifier = drop_notifier
        self.runner_alive = runner_alive
        # Index writes are serialised within a process: LanceDB commits are optimistic and two
        # threads merging into one table would conflict instead of queueing.
        self.index_write_lock = threading.Lock()

    def _in_drop(self, bucket: str, key: str) -> bool:
        return bucket == self.settings.drop_bucket and key.startswith(self.settings.drop_prefix)

    def _drop_object_created(self, info: ObjectInfo) -> None:
        if self._drop_notifier is not None and self._in_drop(info.bucket, info.key):
            self._drop_notifier.record(info)

    def _drop_object_removed(self, uri: str) -> None:
        bucket, key = parse_uri(uri)
        if self._drop_notifier is not None and self._in_drop(bucket, key):
            self._drop_notifier.record_removed(bucket, key)

    @cached_property
    def blobs(self) -> BlobStore:
        if self.settings.profile is Profile.EMBEDDED:
            from medialens.adapters.storage.filesystem import FilesystemBlobStore

            return FilesystemBlobStore(
                self.settings.blobs_dir, on_created=self._drop_object_created, on_removed=self._drop_object_removed
            )
        from medialens import aws
        from medialens.adapters.storage.s3 import S3BlobStore

        return S3BlobStore(aws.s3(self.settings))

    def readmit(self, source: SourceObject) -> None:
        """Hands a drop-bucket object to admission again, as its upload did: the way to start a
        run from a process that cannot reach the state machine (the embedded profile outside the
        process that runs the pipeline)."""
        if self._drop_notifier is None:
            raise ConfigurationError("this process has no admission outbox: start runs through the state machine")
        self._drop_notifier.record(ObjectInfo(source.bucket, source.key, source.size, source.etag, source.version_id))

    @cached_property
    def registry(self) -> AssetRegistry:
        if self.settings.profile is Profile.EMBEDDED:
            from medialens.adapters.registry.sqlite import SqliteAssetRegistry

            return SqliteAssetRegistry(self.settings.registry_path)
        from medialens import aws
        from medialens.adapters.registry.dynamodb import DynamoAssetRegistry

        return DynamoAssetRegistry(aws.dynamodb(self.settings), self.settings.assets_table)

    @cached_property
    def embedder(self) -> TextEmbedder:
        from medialens.ml.text_embedding import get_text_embedder

        return get_text_embedder(self.settings)

    @cached_property
    def english_embedder(self) -> TextEmbedder | None:
        from medialens.ml.text_embedding import get_english_embedder

        return get_english_embedder(self.settings)

    @cached_property
    def image_embedder(self) -> ImageTextEmbedder | None:
        """The image-text (CLIP-style) model the deployment supplied, if one is set."""
        if not self.settings.image_embedding_model:
            return None  # nothing to load, and Pillow (the media extra) is not imported
        from medialens.ml.clip import get_image_embedder

        return get_image_embedder(self.settings)

    @cached_property
    def index(self) -> MomentIndex:
        # The embedders' dimensions come from their packaged specs or manifests: no model load
        # here, so a keyword-only search never loads them (nor imports onnxruntime).
        english_dimensions = self.english_embedder.dimensions if self.english_embedder else None
        image_dimensions = self.image_embedder.dimensions if self.image_embedder else None
        if self.settings.index_backend is IndexBackend.OPENSEARCH or self.settings.opensearch_url:
            from medialens.adapters.index.opensearch import OpenSearchMomentIndex

            return OpenSearchMomentIndex.from_settings(
                self.settings,
                dimensions=self.embedder.dimensions,
                english_dimensions=english_dimensions,
                image_dimensions=image_dimensions,
            )
        from medialens.adapters.index.lance import LanceMomentIndex

        return LanceMomentIndex(
            self.settings.index_dir,
            dimensions=self.embedder.dimensions,
            english_dimensions=english_dimensions,
            image_dimensions=image_dimensions,
        )

    @cached_property
    def search(self) -> SearchService:
        return SearchService(
            self.index,
            self.embedder,
            english_embedder=self.english_embedder,
            image_embedder=self.image_embedder,
            image_weight=self.settings.search_image_weight,
            query_cache_size=self.settings.search_query_cache_size,
            fusion=self.settings.search_fusion,
            alpha=self.settings.search_semantic_weight,
        )

    @cached_property
    def state_machine_arn(self) -> str:
        """The analysis state machine: from the settings (CDK passes it), else looked up by name
        once per process (local profiles)."""
        settings = self.settings
        if settings.state_machine_arn:
            return settings.state_machine_arn
        from medialens import aws

        for machine in aws.stepfunctions(settings).list_state_machines()["stateMachines"]:
            if machine["name"] == settings.state_machine_name:
                return machine["stateMachineArn"]
        raise LookupError(f"state machine {settings.state_machine_name} not found")

    def artifact_uri(self, asset_id: str, *parts: str) -> str:
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
