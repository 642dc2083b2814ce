"""The model a gate judges an image's service against: never the bundle inside the image.

An image is what the gate is gating, so its files and labels are claims. The reference is
the bundle the image's model digest names, pulled from the model repository (every byte
checked against that digest), whose model file must be the one the image's evidence
chain vouched for (the first gate ran on that sha256) before anything is unpickled. The
image's own bundle is then compared with the reference byte for byte, never loaded.
"""

import filecmp
from collections.abc import Callable
from pathlib import Path

from sentiment.model import LoadedBundle, ModelFolder
from sentiment_release.delivery.engine import Engine
from sentiment_release.delivery.errors import DeliveryError
from sentiment_release.delivery.model_store import ModelStore
from sentiment_release.gates.subject import Subject

# Where the build puts the model folder in the image.
IMAGE_MODELS = "/app/models"
# What the gates score with: the reference's scikit-learn model (the compiled scorer the
# service may use is checked against it by the skew check).
REFERENCE_ENGINE = "scikit-learn"


def reference_bundle(
    subject: Subject, model_store: ModelStore, engine: Engine, scratch: Path
) -> LoadedBundle:
    """The reference model for an image's gate, once the image is shown to carry exactly
    its files. DeliveryError saying why when there is none or they differ."""
    if subject.image is None or subject.model_digest is None:
        raise DeliveryError(
            f"image {subject.image or subject.key} names no model digest (its label "
            "io.github.sentiment-mlops.model.digest): a gate judges an image against the "
            "model repository's copy of its model, never against the image's own; build it "
            "again with `sentiment build`"
        )
    claimed = model_store.metadata(subject.model_digest)
    if claimed.sha256 != subject.model_sha256:
        raise DeliveryError(
            f"model {subject.model_digest} is model file {claimed.sha256[:12]}..., but the "
            f"evidence behind image {subject.digest} vouches for {subject.model_sha256[:12]}..."
        )
    registry = ModelFolder(scratch / "reference")
    metadata = model_store.pull(subject.model_digest, registry)  # every byte checked
    engine.copy_from_image(subject.image, IMAGE_MODELS, scratch / "image")
    differences = _differences(
        registry.path_of(metadata.version), scratch / "image", metadata.version
    )
    if differences:
        raise DeliveryError(
            f"image {subject.digest} does not carry model {subject.model_digest} as its "
            f"current model ({'; '.join(differences)}): it would serve another model than "
            "the one its evidence is about"
        )
    return registry.load(metadata.version, REFERENCE_ENGINE)


def _differences(reference: Path, image_models: Path, version: str) -> list[str]:
    """How the image's model folder differs from the reference bundle (bytes only)."""
    try:
        current = (image_models / "CURRENT").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        current = None
    if current != version:
        return [f"its current model is {current!r}, not {version}"]
    shipped = image_models / "versions" / version
    links = [str(path.relative_to(image_models)) for path in image_models.rglob("*")
             if path.is_symlink()]  # fmt: skip
    if links:  # inside the image a link names another file than it does here
        return [f"it holds links ({', '.join(sorted(links)[:3])}), not files"]
    names = sorted(path.name for path in reference.iterdir() if path.is_file())
    found = sorted(path.name for path in shipped.iterdir()) if shipped.is_dir() else []
    problems = [
        f"{name} is not the same" for name in names
        if not (shipped / name).is_file()
        or not filecmp.cmp(reference / name, shipped / name, shallow=False)
    ]  # fmt: skip
    extra = sorted(set(found) - set(names))
    if extra:
        problems.append(f"it also carries {', '.join(extra)}")
    return problems


ReferenceModel = Callable[[Subject, Path], LoadedBundle]
