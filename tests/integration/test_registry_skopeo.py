"""skopeo against a real registry (Debian's docker-registry): a release tag written on the
released digest, nothing pulled, and read back; the base image's pin resolved from a tag."""

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from sentiment_release.delivery import base_image
from sentiment_release.delivery.errors import DeliveryError
from sentiment_release.delivery.registry_server import BINARIES, LocalRegistry
from sentiment_release.delivery.registry_tags import tag_in_registry
from tests.integration.test_registry_server import free_address

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed"),
    pytest.mark.skipif(not any(map(shutil.which, BINARIES)), reason="no docker-registry"),
]


@pytest.fixture(autouse=True)
def not_against_a_deployed_service(request: pytest.FixtureRequest) -> None:
    if request.config.getoption("--base-url"):
        pytest.skip("tests the delivery tooling, not the service at --base-url")


def blob(layout: Path, content: bytes, media_type: str) -> dict:
    digest = hashlib.sha256(content).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(content)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(content)}


def tiny_image(layout: Path, layer_content: bytes = b"\0" * 1024) -> None:
    """An OCI layout holding one image: a config and one layer."""
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    layer = blob(layout, layer_content, "application/vnd.oci.image.layer.v1.tar")
    config = blob(layout, json.dumps({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
    }).encode(), "application/vnd.oci.image.config.v1+json")  # fmt: skip
    manifest = blob(layout, json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config, "layers": [layer],
    }).encode(), "application/vnd.oci.image.manifest.v1+json")  # fmt: skip
    manifest["annotations"] = {"org.opencontainers.image.ref.name": "seed"}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [manifest]}))


@pytest.fixture
def pushed(tmp_path) -> str:
    """REGISTRY/NAME@sha256:... of a tiny image in a registry of the test's own."""
    registry = LocalRegistry(free_address(), tmp_path / "state")
    registry.ensure_running()
    try:
        tiny_image(tmp_path / "layout")
        name = f"{registry.address}/pytest/tiny"
        yield f"{name}@{push(tmp_path / 'layout', f'{name}:seed')}"
    finally:
        registry.stop()


def push(layout: Path, tagged: str) -> str:
    """Pushes the layout's image as `tagged`; the registry's digest for it."""
    digest_file = layout.parent / "digest"
    subprocess.run(
        ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "--digestfile",
         str(digest_file), f"oci:{layout}:seed", f"docker://{tagged}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return digest_file.read_text().strip()


def test_a_release_tag_names_the_released_digest(pushed):
    tagged = tag_in_registry(pushed, "v1.2.3", tls_verify=False)
    assert tagged == f"{pushed.split('@')[0]}:v1.2.3"
    found = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}", f"docker://{tagged}"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    assert found == pushed.split("@")[1]


def test_a_digest_the_registry_lacks_is_not_tagged(pushed):
    missing = f"{pushed.split('@')[0]}@sha256:{'0' * 64}"
    with pytest.raises(DeliveryError, match=f"tagging {missing} as v1.2.3"):
        tag_in_registry(missing, "v1.2.3", tls_verify=False)


@pytest.mark.parametrize("tag", ["v1.2.3+build", "-v1", "v 1", "v1;id", ""])
def test_a_tag_the_registry_would_refuse_is_refused_first(tag):
    with pytest.raises(DeliveryError, match="cannot be a registry tag"):
        tag_in_registry(f"127.0.0.1:5000/x@sha256:{'a' * 64}", tag, tls_verify=False)


def test_only_an_image_pinned_by_digest_is_tagged():
    with pytest.raises(DeliveryError, match="not an image pinned by digest"):
        tag_in_registry("127.0.0.1:5000/x:latest", "v1", tls_verify=False)


CONFIG = """\
build:
  # followed by `make pin-base-image`
  base_image: {value}  # the pin
  python_version: "3.11"
"""


def test_the_base_image_pin_follows_its_tag_to_the_digest_the_registry_serves(pushed, tmp_path):
    name, digest = pushed.split("@")
    config = tmp_path / "delivery.yaml"
    config.write_text(CONFIG.format(value=f"{name}:seed"))

    assert base_image.pin(config) == (f"{name}:seed", f"{name}:seed@{digest}")
    assert config.read_text() == CONFIG.format(value=f"{name}:seed@{digest}")
    assert base_image.pin(config) == (f"{name}:seed@{digest}",) * 2

    tiny_image(tmp_path / "newer", layer_content=b"\1" * 1024)
    moved = push(tmp_path / "newer", f"{name}:seed")
    assert moved != digest
    assert base_image.pin(config)[1] == f"{name}:seed@{moved}"
    assert config.read_text() == CONFIG.format(value=f"{name}:seed@{moved}")


def test_a_tag_the_registry_lacks_leaves_the_pin_alone(pushed, tmp_path):
    name, digest = pushed.split("@")
    config = tmp_path / "delivery.yaml"
    config.write_text(CONFIG.format(value=f"{name}:gone@{digest}"))
    with pytest.raises(DeliveryError, match=f"resolving {name}:gone"):
        base_image.pin(config)
    assert config.read_text() == CONFIG.format(value=f"{name}:gone@{digest}")
