"""The model bundle and its scoring rule: the hand-off from training to serving.

Training writes bundles (release tooling); this package reads and verifies them and
scores with them. It knows nothing of HTTP, and ships in the image with the service.
"""

from model.bundle import (
    BundleError,
    BundleIntegrityError,
    BundleMetadata,
    BundleNotFoundError,
    LoadedBundle,
)
from model.registry import ModelRegistry
from model.scoring import Prediction, Scorer

__all__ = [
    "BundleError",
    "BundleIntegrityError",
    "BundleMetadata",
    "BundleNotFoundError",
    "LoadedBundle",
    "ModelRegistry",
    "Prediction",
    "Scorer",
]
