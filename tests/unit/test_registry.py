import json
import os
import stat
from pathlib import Path

import pytest

from sentiment.model import BundleIntegrityError, BundleNotFoundError, ModelFolder
from sentiment.model import publish as publish_module
from sentiment.model.bundle import METADATA_FILE, MODEL_FILE
from sentiment.model.publish import export, publish, set_current
from sentiment_release.training.train import serialize_model


def bundle_fields() -> dict:
    return {
        "git_commit": "abc",
        "labels": {"0": "negative", "1": "positive"},
        "threshold": 0.5,
        "dataset": {"sha256": "d" * 64, "rows": 3},
        "split": {"seed": 1},
        "hyperparameters": {},
        "metrics": {"accuracy": 1.0},
        "libraries": {"python": "3.11"},
    }


def test_publish_writes_an_immutable_bundle_and_makes_it_current(tmp_path):
    registry = ModelFolder(tmp_path)
    metadata = publish(registry, serialize_model({"weights": [1, 2, 3]}), bundle_fields())
    bundle_dir = tmp_path / "versions" / metadata.version
    assert registry.current_version() == metadata.version
    for name in (MODEL_FILE, METADATA_FILE):
        assert not os.access(bundle_dir / name, os.W_OK) or os.geteuid() == 0
        assert (bundle_dir / name).stat().st_mode & 0o222 == 0
    recorded = json.loads((bundle_dir / METADATA_FILE).read_text())
    assert recorded["sha256"] == metadata.sha256
    assert metadata.version.endswith(metadata.sha256[:8])
    loaded = registry.load()
    assert loaded.model == {"weights": [1, 2, 3]}
    assert loaded.metadata == metadata


def test_every_version_is_kept_and_current_can_move_back(tmp_path, monkeypatch):
    registry = ModelFolder(tmp_path)
    first = publish(registry, serialize_model("one"), bundle_fields())
    second = publish(registry, serialize_model("two"), bundle_fields())
    assert [m.version for m in registry.versions()] == [first.version, second.version]
    assert registry.load().model == "two"
    set_current(registry, first.version)
    assert registry.load().model == "one"
    assert registry.load(second.version).model == "two"


def test_a_tampered_model_file_is_refused(registry_copy):
    bundle_dir = registry_copy.path_of(registry_copy.current_version())
    with open(bundle_dir / MODEL_FILE, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(BundleIntegrityError, match="refusing to load a tampered"):
        registry_copy.load()


def test_tampered_metadata_is_refused(registry_copy):
    path = registry_copy.path_of(registry_copy.current_version()) / METADATA_FILE
    document = json.loads(path.read_text())
    document["sha256"] = "0" * 64
    path.write_text(json.dumps(document))
    with pytest.raises(BundleIntegrityError, match="has sha256"):
        registry_copy.load()
    path.write_text("{not json")
    with pytest.raises(BundleIntegrityError, match="not valid bundle metadata"):
        registry_copy.load()


def test_missing_bundles_and_bad_version_ids(tmp_path):
    registry = ModelFolder(tmp_path)
    with pytest.raises(BundleNotFoundError, match="no current model"):
        registry.load()
    with pytest.raises(BundleNotFoundError, match="not a model version id"):
        registry.load("../../etc")
    with pytest.raises(BundleNotFoundError, match="is not in"):
        registry.load("20260101T000000Z-0123abcd")
    with pytest.raises(BundleNotFoundError):
        set_current(registry, "20260101T000000Z-0123abcd")
    assert registry.current_version() is None


def test_an_interrupted_publish_leaves_no_version_and_keeps_current(tmp_path, monkeypatch):
    registry = ModelFolder(tmp_path)
    kept = publish(registry, serialize_model("kept"), bundle_fields())
    real_write = publish_module.write_durably

    def crash_on_metadata(path, data):
        if path.name == METADATA_FILE:
            raise KeyboardInterrupt  # as if the run were stopped mid-write
        real_write(path, data)

    monkeypatch.setattr(publish_module, "write_durably", crash_on_metadata)
    with pytest.raises(KeyboardInterrupt):
        publish(registry, serialize_model("lost"), bundle_fields())
    assert [m.version for m in registry.versions()] == [kept.version]
    assert registry.current_version() == kept.version
    assert sorted(p.name for p in (tmp_path / "versions").iterdir()) == [kept.version]


def test_staging_leftovers_are_not_versions(tmp_path):
    registry = ModelFolder(tmp_path)
    kept = publish(registry, serialize_model("kept"), bundle_fields())
    half = tmp_path / "versions" / ".staging-x"
    half.mkdir()
    (half / MODEL_FILE).write_bytes(b"half")
    assert [m.version for m in registry.versions()] == [kept.version]


def test_export_makes_a_one_version_registry_any_user_can_read(
    registry_copy: ModelFolder, tmp_path: Path
) -> None:
    exported_root = tmp_path / "context" / "models"
    metadata = export(registry_copy, "current", exported_root)
    exported = ModelFolder(exported_root)
    assert exported.current_version() == metadata.version == registry_copy.current_version()
    assert [m.version for m in exported.versions()] == [metadata.version]
    assert exported.load().metadata.sha256 == metadata.sha256
    for path in [exported_root, *exported_root.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o444 == 0o444, f"{path} is {oct(mode)}"
        if path.is_dir():
            assert mode & 0o111 == 0o111, f"{path} is {oct(mode)}"


def test_export_refuses_a_tampered_bundle(registry_copy: ModelFolder, tmp_path: Path) -> None:
    bundle = registry_copy.path_of(registry_copy.resolve("current"))
    (bundle / "model.joblib").write_bytes(b"not the model")
    with pytest.raises(BundleIntegrityError):
        export(registry_copy, "current", tmp_path / "models")
    assert not (tmp_path / "models" / "CURRENT").exists()


def test_metadata_cannot_point_the_model_file_elsewhere(registry_copy):
    """The file a bundle loads is fixed: metadata naming another path is refused."""
    bundle_dir = registry_copy.path_of(registry_copy.current_version())
    path = bundle_dir / METADATA_FILE
    recorded = json.loads(path.read_text())
    path.write_text(json.dumps({**recorded, "model_file": "../../elsewhere.joblib"}))
    with pytest.raises(BundleIntegrityError, match="model_file"):
        registry_copy.load()
