"""The alert rules, their promtool tests and the Grafana dashboard
(environments/components/monitoring): they parse, the tests pass and would catch a
broken rule, every metric they name is one the service exports, and an overlay that takes
the component renders with them."""

import shutil

import pytest
import yaml

from sentiment_release.delivery import manifests
from sentiment_release.observe.alerts import (
    RULES,
    check_dashboard_queries,
    check_rules,
    dashboard_queries,
    unknown_metrics,
)
from sentiment_release.support.errors import ReleaseError
from tests.conftest import ROOT

COMPONENT = ROOT / "environments" / "components" / "monitoring"
needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="no promtool (apt-get install prometheus)"
)


@needs_promtool
def test_the_rules_parse_and_their_tests_pass():
    output = check_rules(COMPONENT)
    assert "SUCCESS: 11 rules found" in output
    assert "Unit Testing:  alerts.test.yaml\n  SUCCESS" in output


@needs_promtool
@pytest.mark.parametrize(
    ("original", "broken"),
    [
        ("> 0.01", "> 0.5"),  # the error ratio would never page
        ("for: 30m", "for: 300m"),  # drift would wait ten hours
        ("sentiment_drift_window_reviews >= 1000", "sentiment_drift_window_reviews >= 0"),
    ],
)
def test_the_rule_tests_catch_a_broken_rule(tmp_path, original, broken):
    component = tmp_path / "monitoring"
    shutil.copytree(COMPONENT, component)
    rules = (component / RULES).read_text()
    assert original in rules
    (component / RULES).write_text(rules.replace(original, broken, 1))
    with pytest.raises(ReleaseError, match=r"promtool test rules alerts\.test\.yaml failed"):
        check_rules(component)


@needs_promtool
def test_every_dashboard_query_parses(tmp_path):
    assert "SUCCESS: 17 rules found" in check_dashboard_queries(COMPONENT)
    component = tmp_path / "monitoring"
    shutil.copytree(COMPONENT, component)
    dashboard = (component / "dashboard.json").read_text()
    (component / "dashboard.json").write_text(dashboard.replace("[5m]", "[5m", 1))
    with pytest.raises(ReleaseError, match="does not parse"):
        check_dashboard_queries(component)


def exported_names(client) -> set[str]:
    """Every metric family the service exports once it has predicted and had feedback."""
    from prometheus_client.parser import text_string_to_metric_families

    client.post("/predict/", json={"review": "good"}, headers={"X-Request-ID": "m"})
    client.application.extensions["sentiment"].recorder.flush()
    client.post("/v1/feedback", json={"request_id": "m", "label": 1})
    text = client.get("/metrics").get_data(as_text=True)
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names |= {sample.name for sample in family.samples}
    return names


def test_every_metric_the_rules_and_the_dashboard_name_is_exported(client):
    exported = exported_names(client)
    assert unknown_metrics(COMPONENT, exported) == []
    # ... and the check is not vacuous: a renamed metric is named.
    assert unknown_metrics(COMPONENT, exported - {"sentiment_drift_oov_share"}) == [
        "sentiment_drift_oov_share"
    ]
    assert len(dashboard_queries(COMPONENT)) == 17


def test_an_overlay_that_takes_the_component_renders_the_rules_scrape_and_dashboard(tmp_path):
    for folder in ("environments", "config"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    overlay = tmp_path / "environments" / "prod"
    kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text())
    kustomization["components"] = ["../components/monitoring"]  # as README says to
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    image = "127.0.0.1:5000/sentiment-api@sha256:" + "a" * 64
    with manifests.pinned_overlay(overlay, image) as wrapper:
        rendered = manifests.kustomize(wrapper, overlay)
    kinds = {doc["kind"]: doc for doc in yaml.safe_load_all(rendered) if doc}
    assert kinds["PrometheusRule"]["metadata"]["namespace"] == "sentiment-prod"
    assert kinds["ServiceMonitor"]["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "sentiment-api"
    }
    config_maps = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "ConfigMap"]
    dashboards = [d for d in config_maps if "sentiment-api.json" in d["data"]]
    assert dashboards[0]["metadata"]["labels"]["grafana_dashboard"] == "1"
