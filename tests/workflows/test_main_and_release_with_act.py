"""`sentiment github act push` and `... tag`: a merge to main taken through dev, test and
stage, then a release tag taken to prod, by the workflows themselves under act, on a
disposable fork of this tree (its own origin, its own signing and API keys).

Each job gets the secrets GitHub would give it: the fork's secrets file holds one signing
key per GitHub environment, and only a job of that environment can sign its gate's
evidence, so a chain that reaches prod shows every job ran in the environment it names.
Evidence moves between jobs as on GitHub: artifacts (the run's store) within a run, the
delivery-state branch (the fork's origin) between runs. Minutes: `make workflows`.
"""

import copy
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from sentiment.serving.settings import load_settings
from sentiment_release.delivery.api_keys import ApiKeyStore
from sentiment_release.promotion.policy import load_policy
from sentiment_release.support.signing import generate_key_pair
from tests.conftest import CONFIG_DIR, FIXTURE_UAT, ROOT
from tests.container.conftest import FITTED_CHECKS
from tests.workflows.conftest import (
    ANSI,
    SENTIMENT,
    act_engine,
    act_environment,
    clean_up,
)

PREFIX = "sentiment-pytest-actmain-"
RELEASE_TAG = "v0.0.1-act"
POLICY = load_policy(CONFIG_DIR / "promotion.yaml")


def git(where: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(where), *args], check=True, capture_output=True,
                          text=True).stdout.strip()  # fmt: skip


def fork_of_this_tree(tmp: Path) -> Path:
    """A clone of HEAD with this checkout's tracked changes and new files committed on
    top (the tree under test), its origin a local bare repository."""
    origin, fork = tmp / "origin.git", tmp / "fork"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(fork)], check=True)
    git(fork, "checkout", "-q", "-B", "main")
    changes = subprocess.run(["git", "-C", str(ROOT), "diff", "HEAD", "--binary"],
                             check=True, capture_output=True).stdout  # fmt: skip
    if changes:
        subprocess.run(["git", "-C", str(fork), "apply", "--index", "-"], input=changes,
                       check=True)  # fmt: skip
    for name in git(ROOT, "ls-files", "--others", "--exclude-standard").splitlines():
        (fork / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, fork / name)
    git(fork, "remote", "set-url", "origin", str(origin))
    return fork


@pytest.fixture(scope="module")
def fork(tmp_path_factory) -> dict:
    """The fork, its secrets file (one signing key per GitHub environment, the API keys
    where its config asks for them) and the environment `sentiment github act` runs in."""
    engine = act_engine()
    tmp = tmp_path_factory.mktemp("act-fork")
    checkout = fork_of_this_tree(tmp)
    trust = yaml.safe_load((checkout / "config" / "trust.yaml").read_text())
    environments: dict[str, dict[str, str]] = {}
    api_keys = ApiKeyStore(tmp / "api-keys")
    for environment in POLICY.environments:
        pair = generate_key_pair()
        (checkout / "config" / "keys" / f"act-{environment.name}.pub").write_bytes(pair.public_pem)
        trust["gates"][environment.name] = [f"keys/act-{environment.name}.pub"]
        secrets = {"EVIDENCE_SIGNING_KEY": pair.private_pem.decode()}
        if load_settings(environment.name, CONFIG_DIR / "service").auth.required:
            api_keys.ensure_gate_key(environment.name)
            secrets["GATE_API_KEY"] = api_keys.gate_key(environment.name) or ""
            hashes = api_keys.directory(environment.name) / "hashes"
            secrets["API_KEY_HASHES"] = hashes.read_text()
        environments[environment.github_environment] = secrets
    (checkout / "config" / "trust.yaml").write_text(yaml.safe_dump(trust, sort_keys=False))
    git(checkout, "add", "-A")
    git(checkout, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm",
        "fork: this tree, with the fork's own signing keys")  # fmt: skip
    git(checkout, "push", "-q", "origin", "main")
    secrets_file = tmp / "secrets.yaml"
    secrets_file.write_text(yaml.safe_dump({"environments": environments}))

    # Paths in the jobs' own checkouts: pytest there must not reach this one's conftest.
    checks = copy.deepcopy(FITTED_CHECKS)
    checks["stage"]["uat"]["args"] = [str(FIXTURE_UAT.relative_to(ROOT)) if a == str(FIXTURE_UAT)
                                      else a for a in checks["stage"]["uat"]["args"]]  # fmt: skip
    env = act_environment(tmp, engine, PREFIX, checks, state_branch="delivery-state")
    yield {"checkout": checkout, "origin": tmp / "origin.git", "secrets": secrets_file,
           "env": env, "tmp": tmp, "engine": engine}  # fmt: skip
    clean_up(env, engine, PREFIX)


def act(fork: dict, *args: str) -> str:
    done = subprocess.run(
        [SENTIMENT, "github", "act", *args, "--secrets", str(fork["secrets"])],
        cwd=fork["checkout"], env=fork["env"], capture_output=True, text=True, timeout=3000,
        check=False,
    )  # fmt: skip
    log = ANSI.sub("", done.stdout + done.stderr)
    path = fork["tmp"] / f"act-{args[0]}.log"
    path.write_text(log)
    assert done.returncode == 0, f"{log[-8000:]}\n(whole log: {path})"
    return log


def succeeded(log: str) -> set[str]:
    return {m[1].strip() for m in re.finditer(r"^\[([^\]]+)\] 🏁  Job succeeded", log, re.M)}


def history(fork: dict, environment: str) -> str:
    """ENV's ledger as the fork's origin holds it, verified with the fork's keys."""
    env = {**fork["env"], "DELIVERY_STATE_DIR": str(fork["tmp"] / f"verify-{environment}")}
    for command in (["state", "pull"], ["history", environment]):
        done = subprocess.run([SENTIMENT, *command], cwd=fork["checkout"], env=env,
                              capture_output=True, text=True, check=False)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def merged(fork: dict) -> str:
    return act(fork, "push")


def test_a_merge_goes_through_dev_test_and_stage_each_signed_by_its_environment(fork, merged):
    jobs = succeeded(merged)
    assert {"CI/dev gate", "CI/build and push", "dev/Deploy and gate/deploy dev",
            "CI/where this commit went"} <= jobs, sorted(jobs)  # fmt: skip
    for environment in ("test", "stage"):
        assert {f"{environment}/Deploy and gate/promote {environment}",
                f"{environment}/Deploy and gate/publish {environment}'s evidence and ledger",
                } <= jobs, sorted(jobs)  # fmt: skip
        # Signed by the key only that environment's jobs get, and published.
        assert f"{environment}: signed 1 gate record(s)" in merged
        assert "released" in history(fork, environment)
    # The dev gate's evidence reached the test job as an artifact of the run.
    assert re.search(r"Artifact dev-evidence-1 \(\d+ files\) stored", merged)
    assert "Artifact dev-evidence-1 downloaded" in merged


def test_a_release_tag_takes_the_image_stage_passed_to_prod(fork, merged):
    checkout = fork["checkout"]
    git(checkout, "push", "-q", "origin", "main")  # the commit act's rewrite made
    git(checkout, "tag", RELEASE_TAG)
    git(checkout, "push", "-q", "origin", RELEASE_TAG)
    released = act(fork, "tag", "--tag", RELEASE_TAG)
    jobs = succeeded(released)
    assert {"Release/find the image that passed stage", "release/Deploy and gate/promote prod",
            "Release/tag the release in the registry"} <= jobs, sorted(jobs)  # fmt: skip
    # prod's key is the production environment's secret: only a job there could sign.
    assert "prod: signed 1 gate record(s)" in released
    prod = history(fork, "prod")
    assert "released" in prod
    assert RELEASE_TAG in prod
    # The tag job named the released digest by the release tag in the registry.
    image = re.search(r"Releasing `([^`@]+)@(sha256:[0-9a-f]{64})` as " + RELEASE_TAG, released)
    assert image, "the candidate job named no image"
    if shutil.which("skopeo"):
        tagged = subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}",
             f"docker://{image[1]}:{RELEASE_TAG}"], capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        assert tagged == image[2]
