"""The promotion policy: what it allows, what it refuses, and whether the checkout has
what it names. A fifth environment is shown to be data only: a policy entry, a service
config file, an overlay; the set renders and passes the Kubernetes schema."""

import shutil
from pathlib import Path

import pytest
import yaml

from sentiment_release.delivery import manifests
from sentiment_release.promotion.policy import load_policy
from sentiment_release.promotion.policy_check import PLACEHOLDER_IMAGE, policy_problems
from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.project import Project
from tests.conftest import ROOT
from tests.unit.promotion_fakes import FOUR_ENVIRONMENTS, policy_from

REPOSITORY_POLICY = ROOT / "config" / "promotion.yaml"


def test_the_repository_policy():
    policy = load_policy(REPOSITORY_POLICY)
    assert policy.names == ["dev", "test", "stage", "prod"]
    assert [e.name for e in policy.promoted_on_merge] == ["test", "stage"]
    assert policy.release_environment().name == "prod"
    assert policy.environment("prod").github_environment == "production"
    assert policy.environment("prod").on_gate_failure == "rollback"
    assert [check.kind for check in policy.environment("stage").gate] == [
        "smoke", "pytest", "skew", "latency", "shadow",
    ]  # fmt: skip
    assert len(set(policy.ports.values())) == 4


def test_the_checkout_has_what_the_repository_policy_names():
    assert policy_problems(load_policy(REPOSITORY_POLICY), Project(ROOT)) == []


def broken(change: str, old: str, new: str) -> str:
    assert old in FOUR_ENVIRONMENTS, change
    return FOUR_ENVIRONMENTS.replace(old, new, 1)


BROKEN = [
    ("two names", "name: test", "name: dev", "share the name dev"),
    ("two ports", "port: 8002", "port: 8001", "share the port 8001"),
    ("two GitHub environments", "github_environment: test", "github_environment: dev",
     "share the github_environment dev"),
    ("a service check before an image", "unit: {check: scripted, needs_service: false}",
     "unit: {check: smoke}", "cannot run unit"),
    ("an unknown kind", "load: {check: scripted}", "load: {check: wrk}",
     "environment test check 'load': no check of kind 'wrk'"),
    ("bad options", "load: {check: scripted}", "load: {users: 0}",
     "environment test check 'load': load options"),
    ("no checks", "checks: {uat: {check: scripted}}", "checks: {}", "checks"),
    ("a reserved name", "name: stage", "name: rollback", "names the gate after"),
    ("a bad name", "name: stage", "name: Stage!", "environments.2.name"),
    ("a tag for dev", "port: 8001\n", "port: 8001\n    requires_release_tag: true\n",
     "dev is deployed, never promoted to"),
    ("a gate blind to the service", "load: {check: scripted}",
     "load: {check: scripted, needs_service: false}",
     "test: a gate after a deploy needs a check of the deployed service"),
    ("a blind rollback", "rollback_checks: {smoke: {check: scripted}}",
     "rollback_checks: {smoke: {check: scripted, needs_service: false}}",
     "rollback_checks: a gate after a deploy needs a check"),
    ("a bad check name", "load: {check: scripted}", "'../x': {check: scripted}",
     "'../x' is not a check name"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [(broken(change, old, new), message) for change, old, new, message in BROKEN],
    ids=[change for change, *_ in BROKEN],
)
def test_a_broken_policy_is_refused_saying_why(text, message, tmp_path):
    path = tmp_path / "promotion.yaml"
    path.write_text(text)
    with pytest.raises(ReleaseError, match=message) as raised:
        load_policy(path)
    assert str(path) in str(raised.value)


def test_one_environment_is_not_a_promotion(tmp_path):
    path = tmp_path / "promotion.yaml"
    document = yaml.safe_load(FOUR_ENVIRONMENTS)
    document["environments"] = document["environments"][:1]
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ReleaseError, match="environments: List should have at least 2"):
        load_policy(path)


def test_where_an_image_comes_from():
    policy = policy_from(FOUR_ENVIRONMENTS)
    assert policy.previous("dev") is None
    assert policy.previous("prod").name == "stage"
    with pytest.raises(ReleaseError, match=r"'qa' is not an environment \(environments: dev, "):
        policy.previous("qa")


# A fifth environment, as a team would add it: data only.
UAT_ENTRY = {
    "name": "uat",
    "port": 8005,
    "github_environment": "uat",
    "checks": {"smoke": {}, "acceptance": {"check": "pytest", "args": ["tests/uat"]}},
}


def add_environment(root: Path, name: str, like: str) -> None:
    """environments/<name> and config/service/<name>.yaml made from `like`'s, the ConfigMap
    told of the new file."""
    overlay = root / "environments" / name
    shutil.copytree(root / "environments" / like, overlay)
    for path in overlay.iterdir():
        path.write_text(path.read_text().replace(like, name))
    service = root / "config" / "service"
    shutil.copy(service / f"{like}.yaml", service / f"{name}.yaml")
    component = service / "kustomization.yaml"
    document = yaml.safe_load(component.read_text())
    document["configMapGenerator"][0]["files"].append(f"{name}.yaml")
    component.write_text(yaml.safe_dump(document))


@pytest.fixture
def five(tmp_path) -> Project:
    for folder in ("config", "environments"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    add_environment(tmp_path, "uat", like="stage")
    policy = yaml.safe_load(REPOSITORY_POLICY.read_text())
    policy["environments"].insert(3, UAT_ENTRY)
    (tmp_path / "config" / "promotion.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    return Project(tmp_path)


def test_a_fifth_environment_is_data_and_its_overlays_render_and_validate(five):
    policy = load_policy(five.policy_file)
    assert policy.names == ["dev", "test", "stage", "uat", "prod"]
    assert policy.previous("prod").name == "uat"
    assert [e.name for e in policy.promoted_on_merge] == ["test", "stage", "uat"]
    assert policy_problems(policy, five) == []
    rendered = {
        name: manifests.render(five.environments_dir, name, PLACEHOLDER_IMAGE)
        for name in policy.names
    }
    assert "namespace: sentiment-uat" in rendered["uat"]
    assert manifests.validate_schema("---\n".join(rendered.values())) == []


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda root: shutil.rmtree(root / "environments" / "uat"), "uat: no Kubernetes overlay"),
        (
            lambda root: (root / "config" / "service" / "uat.yaml").unlink(),
            "uat: the service config: 'uat' is not an environment",
        ),
        (
            lambda root: (root / "config" / "service" / "prod.yaml").write_text("service: {}\n"),
            "prod takes release-tagged images only, so it is customer-facing",
        ),
        (
            lambda root: (root / "config" / "service" / "kustomization.yaml").write_text(
                (ROOT / "config" / "service" / "kustomization.yaml").read_text()
            ),
            "the policy needs",
        ),
        (
            lambda root: (root / "environments" / "uat" / "patch.yaml").write_text(
                (root / "environments" / "uat" / "patch.yaml")
                .read_text()
                .replace("value: uat", "value: stage")
            ),
            "uat: APP_ENV is 'stage', expected 'uat'",
        ),
    ],
)
def test_what_a_new_environment_still_lacks_is_named(five, damage, problem):
    damage(five.root)
    problems = policy_problems(load_policy(five.policy_file), five)
    assert any(problem in found for found in problems), problems
