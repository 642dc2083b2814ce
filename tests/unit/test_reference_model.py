"""The model an image's gate judges it against comes from the model repository by digest,
checked before anything is unpickled; the image's own bundle is compared byte for byte
and never loaded."""

import pickle
import shutil
from pathlib import Path

import pytest

from sentiment.model import ModelFolder
from sentiment_release.delivery.errors import DeliveryError
from sentiment_release.gates.reference import reference_bundle
from sentiment_release.gates.subject import Subject
from tests.unit.promotion_fakes import MODEL_DIGEST, Detonator, FakeEngine, FakeModelStore

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def image_models(registry_copy, tmp_path) -> Path:
    """The image's model folder: the very bundle the repository holds, as built."""
    models = tmp_path / "image-models"
    shutil.copytree(registry_copy.root, models)
    return models


def subject_of(registry: ModelFolder, **changes) -> Subject:
    metadata = registry.metadata()
    return Subject(
        git_commit="c" * 40, source_tree="t" * 40, model_version=metadata.version,
        model_sha256=metadata.sha256, digest=DIGEST, image=f"r.io/sentiment-api@{DIGEST}",
        model_digest=MODEL_DIGEST,
    ).model_copy(update=changes)  # fmt: skip


def test_the_reference_is_the_repository_s_bundle_when_the_image_carries_it(
    registry_copy, image_models, tmp_path
):
    store = FakeModelStore(registry_copy)
    bundle = reference_bundle(
        subject_of(registry_copy), store, FakeEngine(image_models), tmp_path / "scratch"
    )
    assert bundle.metadata == registry_copy.metadata()
    assert bundle.model is not None  # the reference's scikit-learn model, for the skew check
    assert bundle.path.is_relative_to(tmp_path / "scratch" / "reference")


def test_a_pickle_in_the_image_under_test_is_never_loaded(registry_copy, image_models, tmp_path):
    """The attack: an image whose model file runs code when unpickled. Its metadata could
    vouch for it (it is the image's own); the gate compares bytes and stops."""
    marker = tmp_path / "pwned"
    version = registry_copy.current_version()
    (image_models / "versions" / version / "model.joblib").write_bytes(
        pickle.dumps(Detonator(marker))
    )
    with pytest.raises(
        DeliveryError, match=r"does not carry model .*model\.joblib is not the same"
    ):
        reference_bundle(
            subject_of(registry_copy), FakeModelStore(registry_copy), FakeEngine(image_models),
            tmp_path / "scratch",
        )  # fmt: skip
    assert not marker.exists()


def test_an_image_whose_current_model_is_another_is_refused(registry_copy, image_models, tmp_path):
    (image_models / "CURRENT").write_text("20260101T000000Z-00000000\n")
    with pytest.raises(DeliveryError, match=r"its current model is .20260101T000000Z-00000000."):
        reference_bundle(
            subject_of(registry_copy), FakeModelStore(registry_copy), FakeEngine(image_models),
            tmp_path / "scratch",
        )  # fmt: skip


def test_a_model_digest_for_another_model_file_is_refused_before_any_pull(
    registry_copy, image_models, tmp_path
):
    """The image's label names a repository model whose file is not the one the evidence
    chain vouched for (the first gate's sha256): nothing is fetched, nothing loaded."""
    store = FakeModelStore(registry_copy)
    with pytest.raises(DeliveryError, match=r"but the evidence behind image .* vouches for"):
        reference_bundle(
            subject_of(registry_copy, model_sha256="e" * 64), store, FakeEngine(image_models),
            tmp_path / "scratch",
        )  # fmt: skip
    assert store.pulled == []


def test_an_image_without_a_model_digest_has_no_reference(registry_copy, image_models, tmp_path):
    with pytest.raises(DeliveryError, match="names no model digest"):
        reference_bundle(
            subject_of(registry_copy, model_digest=None), FakeModelStore(registry_copy),
            FakeEngine(image_models), tmp_path / "scratch",
        )  # fmt: skip


def test_an_image_whose_model_is_a_link_is_refused(registry_copy, image_models, tmp_path):
    """A link to a copy of the genuine file compares equal here, and is another file in
    the container."""
    version = registry_copy.current_version()
    model = image_models / "versions" / version / "model.joblib"
    model.unlink()
    model.symlink_to(registry_copy.path_of(version) / "model.joblib")
    with pytest.raises(DeliveryError, match=r"it holds links \(versions/.*/model\.joblib\)"):
        reference_bundle(
            subject_of(registry_copy), FakeModelStore(registry_copy), FakeEngine(image_models),
            tmp_path / "scratch",
        )  # fmt: skip
