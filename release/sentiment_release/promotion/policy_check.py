"""Does the checkout have what the policy names? For each environment: its service config
(loadable), its Kubernetes overlay (rendered and checked with the image pinned, in a
namespace of its own), its file in the ConfigMap; and where a release tag is required, a
customer-facing service. `sentiment policy check` (run by `make lint`) prints what is
missing."""

import yaml

from sentiment.serving.settings import ConfigError, environments, load_settings
from sentiment_release.delivery import manifests
from sentiment_release.delivery.errors import DeliveryError
from sentiment_release.delivery.kubernetes import workload
from sentiment_release.promotion.policy import Policy
from sentiment_release.support.project import Project

# Any digest will do: the overlay's shape is checked, not the image.
PLACEHOLDER_IMAGE = "registry.invalid/sentiment-api@sha256:" + "0" * 64


def policy_problems(policy: Policy, project: Project) -> list[str]:
    problems = []
    config_dir = project.service_config_dir
    namespaces: dict[str, list[str]] = {}
    for environment in policy.environments:
        name = environment.name
        try:
            settings = load_settings(name, config_dir)
        except ConfigError as error:
            problems.append(f"{name}: the service config: {error}")
        else:
            if environment.requires_release_tag and not settings.service.customer_facing:
                problems.append(
                    f"{name} takes release-tagged images only, so it is customer-facing: set "
                    f"service.customer_facing: true in {config_dir / name}.yaml"
                )
        found, namespace = _overlay(name, project)
        problems += [f"{name}: {problem}" for problem in found]
        if namespace:
            namespaces.setdefault(namespace, []).append(name)
    for namespace, sharing in namespaces.items():
        if len(sharing) > 1:
            problems.append(
                f"{' and '.join(sharing)} deploy into one namespace, {namespace}: a promotion "
                "of one would replace the other"
            )
    extra = sorted(set(environments(config_dir)) - set(policy.names))
    if extra:
        problems.append(f"{config_dir} configures environments the policy lacks: {extra}")
    problems += _config_map_problems(policy, project)
    return problems


def _overlay(environment: str, project: Project) -> tuple[list[str], str | None]:
    """The overlay's problems, and the namespace its Deployment goes into."""
    if not (project.environments_dir / environment / "kustomization.yaml").is_file():
        return [f"no Kubernetes overlay {project.environments_dir / environment}/"], None
    try:
        rendered = manifests.render(project.environments_dir, environment, PLACEHOLDER_IMAGE)
        namespace = workload(rendered).namespace
    except DeliveryError as error:
        return [str(error)], None
    problems = manifests.check(environment, rendered, PLACEHOLDER_IMAGE, project.service_config_dir)
    return problems, namespace


def _config_map_problems(policy: Policy, project: Project) -> list[str]:
    component = project.service_config_dir / "kustomization.yaml"
    try:
        generators = yaml.safe_load(component.read_text(encoding="utf-8"))["configMapGenerator"]
        listed = {name for generator in generators for name in generator.get("files", [])}
    except (OSError, yaml.YAMLError, KeyError, TypeError) as error:
        return [f"{component}: cannot read its configMapGenerator ({error})"]
    wanted = {"base.yaml", *(f"{name}.yaml" for name in policy.names)}
    if listed != wanted:
        return [
            f"{component} puts {sorted(listed)} in the ConfigMap; the policy needs {sorted(wanted)}"
        ]
    return []
