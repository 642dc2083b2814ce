"""The Kubernetes deploy target against a stand-in kubectl that records what it was asked."""

import json
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from delivery.errors import DeliveryError, NotReadyError
from delivery.kubernetes import Cluster
from delivery.manifests import tool

DIGEST = "sha256:" + "ab" * 32
IMAGE = f"ghcr.io/acme/sentiment-api@{DIGEST}"

FAKE_KUBECTL = textwrap.dedent(
    """\
    #!{python}
    import json, os, subprocess, sys, time
    args = sys.argv[1:]
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(json.dumps(args) + "\\n")
    if args[:2] == ["config", "current-context"]:
        print("fake-context")
    elif args[:2] == ["apply", "-k"]:
        rendered = subprocess.run([os.environ["REAL_KUBECTL"], "kustomize", args[2]],
                                  capture_output=True, text=True, check=True).stdout
        with open(os.environ["FAKE_APPLIED"], "w") as out:
            out.write(rendered)
    elif args[:2] == ["rollout", "status"]:
        if os.environ.get("FAKE_ROLLOUT_FAILS"):
            print("error: deployment exceeded its progress deadline", file=sys.stderr)
            sys.exit(1)
    elif args[0] == "port-forward":
        if os.environ.get("FAKE_FORWARD_FAILS"):
            print("error: services \\"sentiment-api\\" not found", file=sys.stderr)
            sys.exit(1)
        print("Forwarding from 127.0.0.1:54321 -> 8000", flush=True)
        for _ in range(100000):
            print("Handling connection for 54321", flush=True)
        open(os.environ["FAKE_LOG"] + ".drained", "w").close()
        time.sleep(600)
    """
)


@pytest.fixture
def kubectl(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "kubectl"
    path.write_text(FAKE_KUBECTL.format(python=sys.executable))
    path.chmod(0o755)
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "calls.jsonl"))
    monkeypatch.setenv("FAKE_APPLIED", str(tmp_path / "applied.yaml"))
    monkeypatch.setenv("REAL_KUBECTL", tool("kubectl"))
    return path


def calls(tmp_path: Path) -> list[list[str]]:
    lines = (tmp_path / "calls.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_deploy_applies_the_pinned_overlay_waits_and_forwards(kubectl, tmp_path):
    cluster = Cluster(str(kubectl), rollout_timeout_seconds=120)
    try:
        url = cluster.deploy("test", IMAGE)
        assert url == "http://127.0.0.1:54321"
        process = cluster._forwards[0]
        # kubectl logs a line per connection; unread, its pipe fills and it blocks.
        drained = tmp_path / "calls.jsonl.drained"
        for _ in range(300):
            if drained.exists():
                break
            time.sleep(0.1)
        assert drained.exists(), "the port-forward blocked on a full pipe"
        assert process.poll() is None
    finally:
        cluster.close()
    assert process.poll() is not None  # close() stopped it

    made = calls(tmp_path)
    assert [call[:2] for call in made] == [["apply", "-k"], ["rollout", "status"],
                                           ["port-forward", "-n"]]  # fmt: skip
    assert made[1] == ["rollout", "status", "deployment/sentiment-api", "-n", "sentiment-test",
                       "--timeout=120s"]  # fmt: skip
    assert made[2][2:] == ["sentiment-test", "service/sentiment-api", ":80"]
    applied = list(yaml.safe_load_all((tmp_path / "applied.yaml").read_text()))
    deployment = next(d for d in applied if d["kind"] == "Deployment")
    assert deployment["metadata"]["namespace"] == "sentiment-test"
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE


def test_a_rollout_that_never_finishes_is_not_ready(kubectl, monkeypatch):
    monkeypatch.setenv("FAKE_ROLLOUT_FAILS", "1")
    cluster = Cluster(str(kubectl), rollout_timeout_seconds=5)
    with pytest.raises(NotReadyError, match=r"did not roll out within 5s: .*progress deadline"):
        cluster.deploy("stage", IMAGE)


def test_a_failed_port_forward_says_why(kubectl, monkeypatch):
    monkeypatch.setenv("FAKE_FORWARD_FAILS", "1")
    cluster = Cluster(str(kubectl), rollout_timeout_seconds=5)
    with pytest.raises(NotReadyError, match='services "sentiment-api" not found'):
        cluster.deploy("prod", IMAGE)
    cluster.close()


def test_remove_deletes_only_the_deployment_of_that_namespace(kubectl, tmp_path):
    Cluster(str(kubectl), rollout_timeout_seconds=5).remove("prod")
    assert calls(tmp_path) == [["delete", "deployment", "sentiment-api", "-n", "sentiment-prod",
                                "--ignore-not-found"]]  # fmt: skip


def test_the_current_context_is_named_for_the_log(kubectl):
    assert Cluster(str(kubectl), rollout_timeout_seconds=5).context() == "fake-context"


def test_a_missing_kubectl_is_a_clear_error(tmp_path):
    cluster = Cluster(str(tmp_path / "no-kubectl"), rollout_timeout_seconds=5)
    with pytest.raises(DeliveryError, match="kubectl apply could not run"):
        cluster.deploy("dev", IMAGE)
    assert cluster._forwards == []
