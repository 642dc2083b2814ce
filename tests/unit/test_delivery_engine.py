"""Engine detection and the engine commands, against stand-in engine executables."""

from pathlib import Path

import pytest

from sentiment_release.delivery.engine import Engine, detect_engine
from sentiment_release.delivery.errors import ContainerStartError, ImageNotFoundError, NoEngineError
from tests.unit.fake_engine import fake_engine, install_fake_engine

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only the stand-ins a test installs."""
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", str(directory))
    return directory


def test_auto_prefers_podman_when_it_answers(bin_dir: Path) -> None:
    install_fake_engine(bin_dir, "podman")
    install_fake_engine(bin_dir, "docker")
    assert detect_engine("auto").name == "podman"


def test_a_docker_cli_without_a_daemon_is_not_an_engine(bin_dir: Path) -> None:
    install_fake_engine(bin_dir, "docker", {"info": (1, "Cannot connect to the Docker daemon")})
    with pytest.raises(NoEngineError) as raised:
        detect_engine("auto")
    message = str(raised.value)
    assert "podman: not installed" in message
    assert "Cannot connect to the Docker daemon" in message
    assert "DELIVERY_ENGINE" in message


def test_auto_falls_back_to_docker_when_podman_fails(bin_dir: Path) -> None:
    install_fake_engine(bin_dir, "podman", {"info": (125, "cannot set up namespace")})
    install_fake_engine(bin_dir, "docker")
    assert detect_engine("auto").name == "docker"


def test_a_chosen_engine_is_not_replaced_by_another(bin_dir: Path) -> None:
    install_fake_engine(bin_dir, "podman", {"info": (125, "cannot set up namespace")})
    install_fake_engine(bin_dir, "docker")
    with pytest.raises(NoEngineError, match="cannot set up namespace"):
        detect_engine("podman")


def test_no_engine_at_all(bin_dir: Path) -> None:
    with pytest.raises(NoEngineError, match="podman: not installed; docker: not installed"):
        detect_engine("auto")


def test_podman_builds_in_docker_format_to_keep_the_healthcheck(bin_dir: Path) -> None:
    engine, calls = fake_engine(bin_dir, "podman")
    engine.build(Path("/ctx"), "r/n:t", {"A": "1"}, {"org.example.x": "y z"})
    assert calls.read_text().split() == [
        "build", "--tag", "r/n:t", "--format", "docker", "--build-arg", "A=1",
        "--label", "org.example.x=y", "z", "/ctx",
    ]  # fmt: skip


def test_podman_push_reads_the_registry_digest_from_the_digest_file(
    bin_dir: Path, tmp_path: Path
) -> None:
    calls = install_fake_engine(bin_dir, "podman")
    digest_file = tmp_path / "digest"
    digest_file.write_text(DIGEST)
    engine = Engine("podman", str(bin_dir / "podman"), tls_verify=False)
    assert engine.push("r/n:t", digest_file) == DIGEST
    assert "--tls-verify=false" in calls.read_text()


def test_docker_push_reads_the_digest_from_its_output(bin_dir: Path, tmp_path: Path) -> None:
    engine, _ = fake_engine(bin_dir, "docker", {"push": (0, f"t: digest: {DIGEST} size: 1234")})
    assert engine.push("r/n:t", tmp_path / "unused") == DIGEST


def test_pull_of_an_unknown_digest_is_image_not_found(bin_dir: Path) -> None:
    engine, _ = fake_engine(
        bin_dir, "podman", {"pull": (125, "reading manifest: manifest unknown")}
    )
    with pytest.raises(ImageNotFoundError, match="not in the registry"):
        engine.pull(f"r/n@{DIGEST}")


def test_an_engine_that_cannot_run_containers_is_reported_and_cleaned_up(bin_dir: Path) -> None:
    engine, calls = fake_engine(
        bin_dir,
        "podman",
        {
            "run": (126, "OCI runtime error: crun: cgroup not supported"),
            "container": (125, "Error: no such container c"),
        },
    )
    with pytest.raises(ContainerStartError) as raised:
        engine.start_container("c", "img", [])
    assert "OCI runtime error" in str(raised.value)
    assert "cannot run containers" in str(raised.value)
    logged = calls.read_text().splitlines()
    assert logged[0].startswith("run --detach --name c --init")
    assert "--no-healthcheck" in logged[0]
    assert logged[1] == "container inspect c"  # looked for a half-made container to remove


def test_removing_a_missing_container_is_not_an_error(bin_dir: Path) -> None:
    engine, calls = fake_engine(
        bin_dir, "podman", {"container": (125, "Error: no such container c")}
    )
    assert engine.remove_container("c") is False
    assert "stop" not in calls.read_text()


def test_removing_stops_gracefully_before_removing(bin_dir: Path) -> None:
    engine, calls = fake_engine(
        bin_dir,
        "docker",
        {"container": (0, '[{"State": {"Status": "running"}, "Config": {"Labels": {}}}]')},
    )
    assert engine.remove_container("c") is True
    logged = calls.read_text().splitlines()
    assert logged[1:] == ["stop --time 30 c", "rm --force c"]
