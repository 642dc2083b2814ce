"""Model bundles as OCI artifacts (sentiment_release/delivery/model_store.py) and the champion pin
(sentiment_release/delivery/champion.py), without a registry: what is packed, and that a pull
believes nothing the registry says that its bytes do not prove.
tests/integration/test_model_store.py pushes and pulls through a real registry."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sentiment.model import BundleError, ModelFolder
from sentiment.model.bundle import METADATA_FILE
from sentiment.model.publish import add_bundle
from sentiment_release.delivery.champion import HEADER, ChampionPin, read_pin, write_pin
from sentiment_release.delivery.errors import DeliveryError
from sentiment_release.delivery.model_store import (
    FILE_MEDIA_TYPES,
    METADATA_MEDIA_TYPE,
    TITLE,
    Artifact,
    ModelStore,
    ModelStoreError,
    digest_of,
    pack,
)

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def bundle_dir(trained_registry: Path) -> Path:
    registry = ModelFolder(trained_registry)
    return registry.path_of(registry.resolve("current"))


class LyingRegistry(ModelStore):
    """A registry that serves whatever artifact the test gives it, for any request."""

    def __init__(self, artifact: Artifact):
        super().__init__("127.0.0.1:9/sentiment-model", tls_verify=False)
        self.artifact = artifact
        self.fetched: list[str] = []

    def _ping(self) -> None:
        pass

    def _manifest(self, reference: str) -> bytes:
        return self.artifact.manifest

    def _blob(self, container, digest: str, size: int) -> bytes:
        self.fetched.append(digest)
        return self.artifact.blobs[digest]


def manifest_of(artifact: Artifact) -> dict:
    return json.loads(artifact.manifest)


def with_manifest(artifact: Artifact, manifest: dict) -> Artifact:
    return Artifact(json.dumps(manifest).encode(), artifact.blobs)


def test_a_bundle_packs_to_one_digest_every_time_with_its_files_typed_and_titled(bundle_dir):
    first, again = pack(bundle_dir), pack(bundle_dir)
    assert first.manifest == again.manifest
    assert first.digest == again.digest
    manifest = manifest_of(first)
    metadata = json.loads((bundle_dir / METADATA_FILE).read_bytes())
    assert manifest["config"]["mediaType"] == METADATA_MEDIA_TYPE
    assert first.blobs[manifest["config"]["digest"]] == (bundle_dir / METADATA_FILE).read_bytes()
    titles = {layer["annotations"][TITLE]: layer["mediaType"] for layer in manifest["layers"]}
    assert titles == {name: FILE_MEDIA_TYPES[name] for name in ("model.joblib", "scorer.json")}
    assert manifest["annotations"]["org.opencontainers.image.version"] == metadata["version"]
    for layer in manifest["layers"]:
        data = (bundle_dir / layer["annotations"][TITLE]).read_bytes()
        assert layer["digest"] == digest_of(data)
        assert layer["size"] == len(data)


def test_a_damaged_bundle_is_not_packed(registry_copy: ModelFolder):
    bundle = registry_copy.path_of(registry_copy.resolve("current"))
    (bundle / "model.joblib").write_bytes(b"not the model")
    with pytest.raises(BundleError, match="sha256"):
        pack(bundle)


def test_a_pull_writes_the_bundle_it_checked_and_leaves_current_alone(bundle_dir, tmp_path):
    artifact = pack(bundle_dir)
    target = ModelFolder(tmp_path / "models")
    metadata = LyingRegistry(artifact).pull(artifact.digest, target)
    assert target.current_version() is None
    pulled = target.path_of(metadata.version)
    for name in ("metadata.json", "model.joblib", "scorer.json"):
        assert (pulled / name).read_bytes() == (bundle_dir / name).read_bytes()
    assert target.load(metadata.version).compiled is not None
    # Again: the same bytes are already there, nothing changes.
    assert LyingRegistry(artifact).pull(artifact.digest, target) == metadata


def test_a_manifest_that_is_not_the_digest_asked_for_is_refused(bundle_dir, tmp_path):
    artifact = pack(bundle_dir)
    target = ModelFolder(tmp_path / "models")
    with pytest.raises(ModelStoreError, match="does not hash to it"):
        LyingRegistry(artifact).pull(DIGEST, target)
    assert not target.versions_dir.exists()


def lie(artifact: Artifact, change) -> tuple[Artifact, str]:
    """The artifact with its manifest changed by `change`, and the digest of that manifest
    (a lie that hashes: the registry answers for the digest it was asked for)."""
    manifest = manifest_of(artifact)
    change(manifest)
    lying = with_manifest(artifact, manifest)
    return lying, lying.digest


def _swap_model_for_metadata(manifest: dict) -> None:
    manifest["layers"][0]["digest"] = manifest["config"]["digest"]


def _extra_layer(manifest: dict) -> None:
    manifest["layers"].append({**manifest["layers"][0],
                               "annotations": {TITLE: "../../etc/cron.d/x"}})  # fmt: skip


def _image_config(manifest: dict) -> None:
    manifest["config"]["mediaType"] = "application/vnd.oci.image.config.v1+json"


def _huge_size(manifest: dict) -> None:
    manifest["layers"][0]["size"] = 10**12


def _not_sha256(manifest: dict) -> None:
    manifest["layers"][0]["digest"] = "md5:abc"


def _duplicate_layer(manifest: dict) -> None:
    manifest["layers"].append(manifest["layers"][0])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_swap_model_for_metadata, "does not match its digest"),
        (_extra_layer, "unexpected layer"),
        (_duplicate_layer, "unexpected layer"),
        (_image_config, "is not a model's"),
        (_huge_size, "has size"),
        (_not_sha256, "not a sha256 digest"),
        (lambda manifest: manifest.pop("layers"), "not a model bundle artifact"),
    ],
)
def test_a_manifest_that_hashes_but_lies_is_refused_before_anything_is_written(
    bundle_dir, tmp_path, change, message
):
    lying, digest = lie(pack(bundle_dir), change)
    target = ModelFolder(tmp_path / "models")
    with pytest.raises(ModelStoreError, match=message):
        LyingRegistry(lying).pull(digest, target)
    assert not target.versions_dir.exists()


def test_a_blob_that_is_not_its_digest_is_refused(bundle_dir, tmp_path):
    artifact = pack(bundle_dir)
    layer = manifest_of(artifact)["layers"][0]["digest"]
    served = Artifact(artifact.manifest, {**artifact.blobs, layer: b"x" * 100})
    with pytest.raises(ModelStoreError, match="does not match its digest"):
        LyingRegistry(served).pull(artifact.digest, ModelFolder(tmp_path / "models"))


def metadata_with(bundle_dir: Path, **changes: object) -> bytes:
    document = json.loads((bundle_dir / METADATA_FILE).read_bytes())
    document.update(changes)
    return json.dumps(document).encode()


def files_of(bundle_dir: Path) -> dict[str, bytes]:
    return {name: (bundle_dir / name).read_bytes() for name in ("model.joblib", "scorer.json")}


@pytest.mark.parametrize("version", ["../../escaped", "20261128T000000Z-../../x", "current"])
def test_a_version_id_cannot_name_a_path_outside_the_registry(bundle_dir, tmp_path, version):
    target = ModelFolder(tmp_path / "deep" / "models")
    with pytest.raises(BundleError, match="not a model version id"):
        add_bundle(target, metadata_with(bundle_dir, version=version), files_of(bundle_dir))
    assert not (tmp_path / "escaped").exists()
    assert not (tmp_path / "deep").exists()


def test_files_must_be_the_ones_the_metadata_records(bundle_dir, tmp_path):
    files = {**files_of(bundle_dir), "model.joblib": b"another model"}
    with pytest.raises(BundleError, match="do not match"):
        add_bundle(ModelFolder(tmp_path), (bundle_dir / METADATA_FILE).read_bytes(), files)
    missing = {"model.joblib": files_of(bundle_dir)["model.joblib"]}  # no scorer.json
    with pytest.raises(BundleError, match="do not match"):
        add_bundle(ModelFolder(tmp_path), (bundle_dir / METADATA_FILE).read_bytes(), missing)


def test_one_version_id_never_names_two_bundles(bundle_dir, tmp_path):
    target = ModelFolder(tmp_path)
    add_bundle(target, (bundle_dir / METADATA_FILE).read_bytes(), files_of(bundle_dir))
    other = metadata_with(bundle_dir, git_commit="0" * 40)
    with pytest.raises(BundleError, match="another bundle under the same version"):
        add_bundle(target, other, files_of(bundle_dir))


def test_a_damaged_local_copy_is_not_taken_for_the_pulled_one(bundle_dir, tmp_path):
    target = ModelFolder(tmp_path)
    metadata = add_bundle(target, (bundle_dir / METADATA_FILE).read_bytes(), files_of(bundle_dir))
    model_file = target.path_of(metadata.version) / "model.joblib"
    model_file.chmod(0o644)
    model_file.write_bytes(b"damaged")
    with pytest.raises(BundleError, match="tampered or corrupted"):
        add_bundle(target, (bundle_dir / METADATA_FILE).read_bytes(), files_of(bundle_dir))


def test_the_pin_round_trips_and_keeps_its_comment(tmp_path):
    path = tmp_path / "champion.yaml"
    assert read_pin(path) == ChampionPin()  # no file: nothing pinned
    write_pin(path, ChampionPin(digest=DIGEST, version="20261128T000000Z-abcdef12"))
    assert path.read_text().startswith(HEADER)
    path.write_text("# ours\n" + path.read_text().split("\n", HEADER.count("\n"))[-1])
    write_pin(path, ChampionPin())
    assert path.read_text() == "# ours\ndigest: null\nversion: null\n"
    assert read_pin(path) == ChampionPin()


@pytest.mark.parametrize(
    "document",
    [
        "digest: sha256:abc\nversion: v1\n",
        f"digest: {DIGEST}\n",
        "version: 20261128T000000Z-abcdef12\n",
        f"digest: {DIGEST}\nversion: v\nextra: 1\n",
        "digest: [unclosed\n",
    ],
)
def test_a_pin_that_is_not_one_is_an_error_naming_the_file(tmp_path, document):
    path = tmp_path / "champion.yaml"
    path.write_text(document)
    with pytest.raises(DeliveryError, match=r"champion\.yaml"):
        read_pin(path)


def test_the_committed_pin_is_a_valid_pin():
    from tests.conftest import ROOT

    read_pin(ROOT / "config" / "champion.yaml")


class HostileRegistry(BaseHTTPRequestHandler):
    """/v2/ answers; a manifest drips one byte at a time; a blob is an endless 502."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/v2/":
            self.send_response(200)
            self.end_headers()
            return
        self.send_response(502 if "/blobs/" in self.path else 200)
        self.end_headers()
        try:
            while True:
                self.wfile.write(b"x" * (65536 if "/blobs/" in self.path else 1))
                self.wfile.flush()
                if "/manifests/" in self.path:
                    time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def hostile():
    server = ThreadingHTTPServer(("127.0.0.1", 0), HostileRegistry)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_registry_that_drips_or_floods_cannot_hold_or_fill_a_pull(hostile, monkeypatch):
    import sentiment_release.delivery.model_store as model_store

    monkeypatch.setattr(model_store, "TRANSFER_SECONDS", 1)
    store = ModelStore(f"{hostile}/sentiment-model", tls_verify=False)
    started = time.monotonic()
    with pytest.raises(ModelStoreError, match="took more than 1 s"):
        store.metadata(DIGEST)
    assert time.monotonic() - started < 5
    container = store.client.get_container(store.reference(DIGEST))
    with pytest.raises(ModelStoreError, match=r"HTTP 502 x{300}$"):  # 300 bytes of the body
        store._blob(container, DIGEST, 100)
