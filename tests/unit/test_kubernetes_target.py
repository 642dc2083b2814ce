"""The Kubernetes target against a stand-in kubectl that records what it was asked, keeps
what was applied, and forwards to a small HTTP server playing the service."""

import base64
import json
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from sentiment_release.delivery import manifests
from sentiment_release.delivery.api_keys import ApiKeyStore
from sentiment_release.delivery.errors import DeliveryError, NotReadyError
from sentiment_release.delivery.kubernetes import Kubernetes
from sentiment_release.delivery.manifests import required_tool
from sentiment_release.delivery.records import Records
from tests.conftest import ROOT, SERVICE_CONFIG_DIR

DIGEST = "sha256:" + "ab" * 32
IMAGE = f"ghcr.io/acme/sentiment-api@{DIGEST}"

FAKE_KUBECTL = textwrap.dedent(
    """\
    #!{python}
    import json, os, subprocess, sys, threading, time
    from http.server import BaseHTTPRequestHandler, HTTPServer
    args = sys.argv[1:]
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(json.dumps(args) + "\\n")
    applied = os.environ["FAKE_APPLIED"]
    if args[:2] == ["config", "current-context"]:
        print("fake-context")
    elif args[:2] == ["apply", "-k"]:
        rendered = subprocess.run([os.environ["REAL_KUBECTL"], "kustomize", args[2]],
                                  capture_output=True, text=True, check=True).stdout
        with open(applied, "w") as out:
            out.write(rendered)
    elif args[:2] == ["rollout", "status"]:
        if os.environ.get("FAKE_ROLLOUT_FAILS"):
            print("error: deployment exceeded its progress deadline", file=sys.stderr)
            sys.exit(1)
    elif args[:2] == ["get", "deployment"]:
        if os.path.exists(applied):
            import yaml
            deployment = next(d for d in yaml.safe_load_all(open(applied))
                              if d and d["kind"] == "Deployment")
            deployment["status"] = {{"readyReplicas": deployment["spec"]["replicas"]}}
            print(json.dumps(deployment))
    elif args[0] == "port-forward":
        if os.environ.get("FAKE_FORWARD_SILENT"):
            time.sleep(600)
        if os.environ.get("FAKE_FORWARD_FAILS"):
            print("error: services \\"sentiment-api\\" not found", file=sys.stderr)
            sys.exit(1)

        class Service(BaseHTTPRequestHandler):
            def do_GET(self):
                body = json.dumps({{"status": "ready", "model_version": "m-1"}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = HTTPServer(("127.0.0.1", 0), Service)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        print(f"Forwarding from 127.0.0.1:{{server.server_address[1]}} -> 8000", flush=True)
        for _ in range(100000):
            print("Handling connection", flush=True)
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
    monkeypatch.setenv("REAL_KUBECTL", required_tool("kubectl"))
    return path


def cluster(kubectl: Path, tmp_path: Path, timeout: float = 120, keys: bool = True) -> Kubernetes:
    """The target, with gate keys for the environments that ask for them (unless not `keys`)."""
    api_keys = ApiKeyStore(tmp_path / "api-keys")
    for environment in ("stage", "prod") if keys else ():
        api_keys.ensure_gate_key(environment)
    return Kubernetes(
        str(kubectl), timeout, ROOT / "environments", SERVICE_CONFIG_DIR, Records(tmp_path / "s"),
        api_keys,
    )  # fmt: skip


def test_keys_go_into_a_generated_secret_applied_with_the_overlay(kubectl, tmp_path):
    target = cluster(kubectl, tmp_path)
    hashes = target.api_keys.hashes_file("stage").read_bytes()
    try:
        target.deploy("stage", IMAGE)
    finally:
        target.close()
    assert [call[:2] for call in calls(tmp_path)] == [["apply", "-k"], ["rollout", "status"],
                                                      ["port-forward", "-n"]]  # fmt: skip
    applied = [d for d in yaml.safe_load_all((tmp_path / "applied.yaml").read_text()) if d]
    kinds = [d["kind"] for d in applied]
    # One apply: the Namespace first, so the Secret has somewhere to go on a new cluster.
    assert kinds.index("Namespace") < kinds.index("Secret") < kinds.index("Deployment")
    secret = next(d for d in applied if d["kind"] == "Secret")
    assert secret["metadata"]["namespace"] == "sentiment-stage"
    assert secret["metadata"]["name"].startswith("sentiment-api-keys-")
    assert base64.b64decode(secret["data"]["hashes"]) == hashes
    pod = next(d for d in applied if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "api-keys")
    # The name carries a hash of the data: new keys, a new name, the pods roll.
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    assert manifests.check("stage", (tmp_path / "applied.yaml").read_text(), IMAGE,
                           SERVICE_CONFIG_DIR) == []  # fmt: skip
    gate_key = target.api_keys.gate_key("stage")
    assert gate_key not in json.dumps(calls(tmp_path))

    target.api_keys.create("stage", "acme")
    try:
        target.deploy("stage", IMAGE)
    finally:
        target.close()
    applied = [d for d in yaml.safe_load_all((tmp_path / "applied.yaml").read_text()) if d]
    renamed = next(d for d in applied if d["kind"] == "Secret")["metadata"]["name"]
    assert renamed != secret["metadata"]["name"]


def test_an_environment_without_keys_here_is_refused_before_kubectl_runs(kubectl, tmp_path):
    with pytest.raises(DeliveryError, match="stage requires API keys and has none here"):
        cluster(kubectl, tmp_path, keys=False).deploy("stage", IMAGE)
    assert not (tmp_path / "calls.jsonl").exists()


def calls(tmp_path: Path) -> list[list[str]]:
    lines = (tmp_path / "calls.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_deploy_applies_the_pinned_overlay_waits_and_forwards(kubectl, tmp_path):
    target = cluster(kubectl, tmp_path)
    try:
        record = target.deploy("test", IMAGE)
        assert record.url.startswith("http://127.0.0.1:")
        assert (record.target, record.digest, record.model_version) == ("kubernetes", DIGEST, "m-1")
        process = target._forwards[0]
        # kubectl logs a line per connection; unread, its pipe fills and it blocks.
        drained = tmp_path / "calls.jsonl.drained"
        for _ in range(300):
            if drained.exists():
                break
            time.sleep(0.1)
        assert drained.exists(), "the port-forward blocked on a full pipe"
        assert process.poll() is None
    finally:
        target.close()
    assert process.poll() is not None  # close() stopped it
    assert target.records.deployment("test") == record

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


def test_status_asks_the_cluster_what_runs(kubectl, tmp_path):
    target = cluster(kubectl, tmp_path)
    assert target.status("stage").state == "not deployed"
    try:
        target.deploy("stage", IMAGE)
    finally:
        target.close()
    found = target.status("stage")
    assert (found.image, found.health, found.model_version) == (IMAGE, "ready", "m-1")
    assert found.state == "2/2 ready"


def test_a_rollout_that_never_finishes_is_not_ready(kubectl, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_ROLLOUT_FAILS", "1")
    with pytest.raises(NotReadyError, match=r"did not roll out within 5s: .*progress deadline"):
        cluster(kubectl, tmp_path, timeout=5).deploy("stage", IMAGE)


def test_a_failed_port_forward_says_why(kubectl, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_FORWARD_FAILS", "1")
    target = cluster(kubectl, tmp_path, timeout=5)
    with pytest.raises(NotReadyError, match='services "sentiment-api" not found'):
        target.deploy("prod", IMAGE)
    target.close()
    assert target.records.deployment("prod") is None


def test_a_port_forward_that_says_nothing_is_given_up_on(kubectl, tmp_path, monkeypatch):
    from sentiment_release.delivery import kubernetes

    monkeypatch.setenv("FAKE_FORWARD_SILENT", "1")
    monkeypatch.setattr(kubernetes, "FORWARD_TIMEOUT_SECONDS", 1)
    target = cluster(kubectl, tmp_path, timeout=5)
    started = time.monotonic()
    with pytest.raises(NotReadyError, match=r"port-forward .* failed: \(nothing in 1s\)"):
        target.deploy("prod", IMAGE)
    assert time.monotonic() - started < 20
    assert all(process.poll() is not None for process in target._forwards)
    target.close()


def test_remove_deletes_only_the_deployment_of_that_namespace(kubectl, tmp_path):
    cluster(kubectl, tmp_path, timeout=5).remove("prod")
    assert calls(tmp_path) == [["delete", "deployment", "sentiment-api", "-n", "sentiment-prod",
                                "--ignore-not-found"]]  # fmt: skip


def test_the_current_context_is_named_for_the_log(kubectl, tmp_path):
    assert "context fake-context" in cluster(kubectl, tmp_path, timeout=5).describe()


def test_a_missing_kubectl_is_a_clear_error(tmp_path):
    target = cluster(tmp_path / "no-kubectl", tmp_path, timeout=5)
    with pytest.raises(DeliveryError, match="kubectl apply could not run"):
        target.deploy("dev", IMAGE)
    assert target._forwards == []
