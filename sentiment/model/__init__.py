"""The model bundle and its scoring rule: the hand-off from training to serving.

Training writes bundles (release tooling); this package reads and verifies them and
scores with them. It knows nothing of HTTP, and ships in the image with the service.
"""

from sentiment.model.bundle import (
    BundleError,
    BundleIntegrityError,
    BundleMetadata,
    BundleNotFoundError,
    LoadedBundle,
)
from sentiment.model.folder import ModelFolder
from sentiment.model.scoring import Prediction, Scorer

__all__ = [
    "BundleError",
    "BundleIntegrityError",
    "BundleMetadata",
    "BundleNotFoundError",
    "LoadedBundle",
    "ModelFolder",
    "Prediction",
    "Scorer",
]
