"""Versioned, immutable model bundles: the hand-off from training to serving."""

from model_registry.bundle import (
    BundleError,
    BundleIntegrityError,
    BundleMetadata,
    BundleNotFoundError,
    LoadedBundle,
)
from model_registry.registry import ModelRegistry

__all__ = [
    "BundleError",
    "BundleIntegrityError",
    "BundleMetadata",
    "BundleNotFoundError",
    "LoadedBundle",
    "ModelRegistry",
]
