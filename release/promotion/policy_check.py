"""Does the checkout have what the policy names? For each environment: its service config
(loadable), its Kubernetes overlay (rendered and checked with the image pinned), its file
in the ConfigMap; and where a release tag is required, a customer-facing service.
`sentiment policy check` (run by `make lint`) prints what is missing."""

import yaml

from delivery import manifests
from delivery.errors import DeliveryError
from promotion.policy import Policy
from service.settings import ConfigError, environments, load_settings
from support.project import Project

# Any digest will do: the overlay's shape is checked, not the image.
PLACEHOLDER_IMAGE = "registry.invalid/sentiment-api@sha256:" + "0" * 64


def policy_problems(policy: Policy, project: Project) -> list[str]:
    problems = []
    config_dir = project.service_config_dir
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
        problems += [f"{name}: {problem}" for problem in _overlay_problems(name, project)]
    extra = sorted(set(environments(config_dir)) - set(policy.names))
    if extra:
        problems.append(f"{config_dir} configures environments the policy lacks: {extra}")
    problems += _config_map_problems(policy, project)
    return problems


def _overlay_problems(environment: str, project: Project) -> list[str]:
    if not (project.environments_dir / environment / "kustomization.yaml").is_file():
        return [f"no Kubernetes overlay {project.environments_dir / environment}/"]
    try:
        rendered = manifests.render(project.environments_dir, environment, PLACEHOLDER_IMAGE)
    except DeliveryError as error:
        return [str(error)]
    return manifests.check(environment, rendered, PLACEHOLDER_IMAGE, project.service_config_dir)


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
