"""Adapters, one interface each with an AWS and an embedded backend: blob storage, the asset
registry and the moment index."""
