"""Hostile values at the CLI's boundary: each is refused with a message before it is used,
and none reaches a shell, git or an engine as anything but data."""

import pytest
from click.testing import CliRunner

from sentiment_release.cli.main import cli
from sentiment_release.delivery.registry_server import LocalRegistry
from sentiment_release.gates.attestation import UntrustedEvidenceError
from tests.conftest import ROOT, make_evidence_store
from tests.unit.promotion_fakes import evidence, resign, statement_of, subject

HOSTILE = ["dev;id", "$(id)", "`id`", "dev prod", "dev\nid", "../prod", "-rf"]
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def run(monkeypatch, tmp_path):
    """The CLI, which must refuse every value here before it starts anything: a registry
    started from a test would outlive it, its images in a directory pytest deletes."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("DELIVERY_STATE_DIR", str(tmp_path / "state"))

    def starts_nothing(registry):
        raise AssertionError(f"a registry was started at {registry.address}")

    monkeypatch.setattr(LocalRegistry, "ensure_running", starts_nothing)

    def invoke(*args: str):
        return CliRunner().invoke(cli, list(args))

    return invoke


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize(
    "command",
    [["deploy", "{}"], ["undeploy", "{}"], ["smoke", "{}"], ["rollback", "{}"], ["history", "{}"],
     ["gate", "{}"], ["render", "{}"], ["promote", "--to", "{}"], ["pipeline", "--until", "{}"],
     ["policy", "github-environment", "{}"], ["registry", "tag-release", "{}"]],
)  # fmt: skip
def test_an_environment_must_be_one_of_the_policy(run, command, value):
    result = run(*[part.replace("{}", value) for part in command])
    assert result.exit_code == 2  # a usage error: nothing ran
    refused = ("is not one of", "No such option")  # "-rf" reads as an option, and is none
    assert any(reason in result.output for reason in refused), result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "image",
    [f"{DIGEST};id", f"r.io/n@{DIGEST} ; rm -rf /", f"$(id)@{DIGEST}", "r.io/n:latest",
     f"--privileged@{DIGEST}", f"r.io/n@{DIGEST}\nid"],
)  # fmt: skip
@pytest.mark.parametrize("command", [["deploy", "dev"], ["promote", "--to", "test"], ["evidence"]])
def test_an_image_must_be_pinned_by_digest(run, command, image):
    result = run(*command, "--image", image)
    assert result.exit_code == 1
    assert "deployed by digest, never by tag" in result.output


@pytest.mark.parametrize("tag", ["v1;id", "v$(id)", "v`id`", "v1~1", "v1 2", "v1\nid", ".v1"])
def test_a_release_candidate_is_asked_for_by_a_tag_name(run, tag):
    result = run("release-candidate", tag)
    assert result.exit_code == 1
    assert f"{tag!r} is not a tag name" in result.output


def test_evidence_naming_a_hostile_image_never_counts_even_when_signed(tmp_path):
    store = make_evidence_store(tmp_path)
    record = evidence(store, "stage", subject(1))
    statement = statement_of(store, record.id)
    statement["predicate"]["subject"]["image"] = f"127.0.0.1:5000/x@{DIGEST}; touch /tmp/pwned"
    resign(store, record.id, statement)  # by the stage key itself
    with pytest.raises(
        UntrustedEvidenceError, match=r"predicate is not a valid EvidenceRecord: subject\.image"
    ):
        store.get(record.id, "stage")


def test_smoke_without_a_deployment_says_to_deploy_first(run):
    result = run("smoke", "dev")
    assert result.exit_code == 1
    assert "nothing is deployed as dev here: `make deploy` first" in result.output
