"""Blob storage: S3 on AWS, a directory tree in the embedded profile; addresses are s3:// URIs."""

from medialens.adapters.storage.base import BlobStore, ObjectInfo, join_uri, parse_uri

__all__ = ["BlobStore", "ObjectInfo", "join_uri", "parse_uri"]
