"""What `sentiment github act` puts back of GitHub under act (release/github/act.py,
.github/act/): environment secrets, scoped per job; the artifact store, with its rules;
the remote actions act cannot fetch."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from sentiment_release.github.act import (
    ActSecrets,
    scope_environment_secrets,
    stand_in_flags,
    write_runner_env,
)
from tests.conftest import ROOT

ARTIFACTS = ROOT / ".github" / "act" / "artifacts.py"
WORKFLOW = """\
on: push
jobs:
  plain:
    runs-on: ubuntu-latest
    steps:
      - run: echo "$T"
        env:
          T: ${{ secrets.TOKEN }}
  named:
    runs-on: ubuntu-latest
    environment: production
    steps:
      - run: echo "$K"
        env:
          K: ${{ secrets.EVIDENCE_SIGNING_KEY }}
  chosen:
    runs-on: ubuntu-latest
    environment:
      name: ${{ needs.plan.outputs.github-environment }}
    steps:
      - run: echo "secrets.NOT_AN_EXPRESSION $K $A"
        env:
          K: ${{ secrets.EVIDENCE_SIGNING_KEY }}
          A: ${{ secrets.A != '' && secrets.B }}
"""


def test_a_job_reads_its_environment_s_secret_over_the_repository_s():
    scoped = scope_environment_secrets(WORKFLOW)
    jobs = yaml.safe_load(scoped)["jobs"]
    assert jobs["plain"]["steps"][0]["env"]["T"] == "${{ secrets.TOKEN }}"
    assert jobs["named"]["steps"][0]["env"]["K"] == (
        "${{ (secrets[format('{0}__EVIDENCE_SIGNING_KEY', 'production')]"
        " || secrets.EVIDENCE_SIGNING_KEY) }}"
    )
    chosen = jobs["chosen"]["steps"][0]
    assert chosen["env"]["K"] == (
        "${{ (secrets[format('{0}__EVIDENCE_SIGNING_KEY', needs.plan.outputs.github-environment)]"
        " || secrets.EVIDENCE_SIGNING_KEY) }}"
    )
    assert chosen["env"]["A"].count("secrets[format(") == 2
    assert chosen["env"]["A"].count("|| secrets.") == 2
    assert "secrets.NOT_AN_EXPRESSION" in chosen["run"]
    assert scope_environment_secrets(scoped) == scoped  # once is enough


def test_every_workflow_is_scoped_and_its_copy_passes_the_lint(tmp_path: Path):
    """The run's copy is what its lint job lints (make lint: actionlint, zizmor)."""
    copy = tmp_path / ".github"
    shutil.copytree(ROOT / ".github" / "actions", copy / "actions")
    shutil.copy(ROOT / ".github" / "zizmor.yml", copy / "zizmor.yml")
    (copy / "workflows").mkdir()
    for path in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        scoped = scope_environment_secrets(path.read_text())
        for job in yaml.safe_load(scoped)["jobs"].values():
            if "environment" in job:
                assert "${{ secrets." not in yaml.safe_dump(job), path.name
        (copy / "workflows" / path.name).write_text(scoped)
    bin_dir = Path(sys.executable).parent
    for argv in (
        [
            str(bin_dir / "actionlint"),
            "-no-color",
            *sorted(map(str, (copy / "workflows").glob("*.yml"))),
        ],
        [str(bin_dir / "zizmor"), "--offline", "--quiet", "--no-progress", str(copy)],
    ):
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_secret_file_names_environment_secrets_and_keeps_their_bytes():
    secrets = ActSecrets(
        repository={"TOKEN": 'a "quoted" \\ value'},
        environments={"production": {"EVIDENCE_SIGNING_KEY": "-----BEGIN\nline\n-----END\n"}},
    )
    lines = secrets.act_secret_file().splitlines()
    assert lines == [
        'TOKEN="a \\"quoted\\" \\\\ value"',
        'production__EVIDENCE_SIGNING_KEY="-----BEGIN\\nline\\n-----END\\n"',
    ]


@pytest.mark.parametrize("bad", [{"environments": {"../x": {}}}, {"repository": {"A-B": "x"}},
                                 {"other": {}}])  # fmt: skip
def test_a_secrets_file_with_bad_names_is_refused(bad):
    with pytest.raises(ValidationError):
        ActSecrets(**bad)


def test_artifact_actions_are_stood_in_for_and_every_other_remote_action_fails_if_run():
    flags = stand_in_flags(ROOT)
    mapped = dict(flag.split("=", 1) for flag in flags if flag != "--local-repository")
    assert not any(action.startswith("actions/checkout@") for action in mapped)
    for action, stand_in in mapped.items():
        name = action.split("@")[0]
        expected = {
            "actions/upload-artifact": "upload-artifact",
            "actions/download-artifact": "download-artifact",
        }.get(name, "stand-in")
        assert Path(stand_in) == ROOT / ".github" / "act" / expected, action
        assert (Path(stand_in) / "action.yml").is_file()


def artifacts(command: str, cwd: Path, store: Path, **inputs: str):
    env = {**os.environ, "ACT_ARTIFACTS": str(store), "GITHUB_OUTPUT": str(cwd / "output"),
           **{f"INPUT_{k.upper()}": v for k, v in inputs.items()}}  # fmt: skip
    return subprocess.run([sys.executable, str(ARTIFACTS), command], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    for name in (".delivery/evidence/a.json", ".delivery/ledger/test.jsonl",
                 ".delivery/ledger/.hidden", ".delivery/reports/r.txt"):  # fmt: skip
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(name)
    (work / "output").write_text("")
    return work


def test_an_upload_keeps_paths_under_the_least_common_ancestor_and_a_download_puts_them_back(
    tree: Path, tmp_path: Path
):
    store = tmp_path / "store"
    paths = ".delivery/evidence/*.json\n.delivery/ledger/*.jsonl\n"
    done = artifacts("upload", tree, store, name="state-1", path=paths, hidden="true",
                     if_no_files="error")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "artifact-id=" in (tree / "output").read_text()
    stored = sorted(str(p.relative_to(store)) for p in store.rglob("*") if p.is_file())
    assert stored == ["state-1/evidence/a.json", "state-1/ledger/test.jsonl"]
    target = tmp_path / "elsewhere"
    target.mkdir()
    done = artifacts("download", target, store, name="state-1", path=".delivery")
    assert done.returncode == 0, done.stderr
    assert (target / ".delivery" / "ledger" / "test.jsonl").read_text() == (
        ".delivery/ledger/test.jsonl"
    )


def test_a_name_is_uploaded_once_per_run_as_on_github(tree: Path, tmp_path: Path):
    store = tmp_path / "store"
    kwargs = {"name": "dev-evidence-1", "path": ".delivery/evidence", "hidden": "true",
              "if_no_files": "error"}  # fmt: skip
    assert artifacts("upload", tree, store, **kwargs).returncode == 0
    again = artifacts("upload", tree, store, **kwargs)
    assert again.returncode != 0
    assert "(409) Conflict" in again.stdout + again.stderr


def test_hidden_files_stay_out_unless_asked_and_nothing_found_is_as_configured(
    tree: Path, tmp_path: Path
):
    store = tmp_path / "store"
    hidden = artifacts("upload", tree, store, name="a", path=".delivery", hidden="false",
                       if_no_files="error")  # fmt: skip
    assert hidden.returncode != 0
    assert "No files were found" in hidden.stdout + hidden.stderr
    warned = artifacts("upload", tree, store, name="b", path="missing/*", hidden="true",
                       if_no_files="warn")  # fmt: skip
    assert warned.returncode == 0
    assert "::warning::" in warned.stdout
    assert "artifact-id" not in (tree / "output").read_text()
    assert not (store / "b").exists()
    every = artifacts("upload", tree, store, name="c", path=".delivery", hidden="true",
                      if_no_files="error")  # fmt: skip
    assert (store / "c" / "ledger" / ".hidden").is_file(), every.stderr


def test_a_download_of_a_name_never_uploaded_fails(tmp_path: Path):
    done = artifacts("download", tmp_path, tmp_path / "store", name="nothing", path=".")
    assert done.returncode != 0
    assert "Artifact not found for name: nothing" in done.stdout + done.stderr


def test_the_runner_env_gives_the_runner_s_engine_and_local_registry_only(tmp_path):
    """The jobs apply config/github-actions.env; the runner's own facts (this machine's
    engine and the local registry standing in for GHCR) are all act's --env-file sets."""
    written = write_runner_env(tmp_path, "podman", "127.0.0.1:5999")
    assert written == tmp_path / "act" / "runner.env"
    settings = dict(line.split("=", 1) for line in written.read_text().splitlines())
    assert settings == {"DELIVERY_ENGINE": "podman",
                        "DELIVERY_REGISTRY__ADDRESS": "127.0.0.1:5999",
                        "DELIVERY_REGISTRY__TLS_VERIFY": "false"}  # fmt: skip
    github_env = (ROOT / "config" / "github-actions.env").read_text()
    assert "TRUST_LOCAL_KEYS=false" in github_env
    assert not {"TRUST_LOCAL_KEYS", "DELIVERY_REGISTRY__TAG_RELEASES"} & set(settings)
