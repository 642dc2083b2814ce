"""The alert rules and the dashboard of environments/components/monitoring, checked:
the rules by promtool (check rules, then the unit tests of alerts.test.yaml), the
dashboard's queries by promtool too (each one as a recording rule) and against the names
of the metrics the service exports."""

import json
import re
import shutil
import tempfile
from pathlib import Path

import yaml

from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.process import find_tool, run

RULES = "prometheusrule.yaml"
RULE_TESTS = "alerts.test.yaml"
DASHBOARD = "dashboard.json"
# promtool test rules reads the rules from this name, beside the tests.
EXTRACTED = "alerts.rules.yaml"
METRIC = re.compile(r"\b(?:sentiment_|namespace:sentiment_)[a-z0-9_:]+")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def promtool() -> str:
    program = find_tool("promtool")
    if program is None:
        raise ReleaseError("promtool is not installed (Debian: apt-get install prometheus)")
    return program


def rule_groups(component: Path) -> dict:
    """The PrometheusRule's spec: a plain Prometheus rules file."""
    document = yaml.safe_load((component / RULES).read_text(encoding="utf-8"))
    return document["spec"]


def recorded_names(component: Path) -> set[str]:
    return {rule["record"] for group in rule_groups(component)["groups"]
            for rule in group["rules"] if "record" in rule}  # fmt: skip


def dashboard_queries(component: Path) -> list[str]:
    dashboard = json.loads((component / DASHBOARD).read_text(encoding="utf-8"))
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def check_rules(component: Path) -> str:
    """promtool check rules, then promtool test rules; its output, or ReleaseError."""
    with tempfile.TemporaryDirectory(prefix="alerts-") as scratch:
        folder = Path(scratch)
        (folder / EXTRACTED).write_text(yaml.safe_dump(rule_groups(component)), encoding="utf-8")
        shutil.copy(component / RULE_TESTS, folder / RULE_TESTS)
        output = []
        for args in (("check", "rules", EXTRACTED), ("test", "rules", RULE_TESTS)):
            done = run([promtool(), *args], cwd=folder, check=False)
            output.append(done.output)
            if not done.ok:
                raise ReleaseError(f"promtool {' '.join(args)} failed:\n{done.output}")
        return "\n".join(part.strip() for part in output) + "\n"


def check_dashboard_queries(component: Path) -> str:
    """Every panel's query parses (promtool checks them as recording rules)."""
    rules = [
        {"record": f"dashboard:query_{number}", "expr": expr.replace("$namespace", "x")}
        for number, expr in enumerate(dashboard_queries(component))
    ]
    with tempfile.TemporaryDirectory(prefix="dashboard-") as scratch:
        path = Path(scratch, "queries.yaml")
        path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
        done = run([promtool(), "check", "rules", str(path)], check=False)
    if not done.ok:
        raise ReleaseError(f"a dashboard query does not parse:\n{done.output}")
    return done.output.strip() + "\n"


def unknown_metrics(component: Path, exported: set[str]) -> list[str]:
    """Names the rules and the dashboard query that neither the service exports nor a
    recording rule makes (a renamed metric would leave a panel empty, an alert silent)."""
    known = set(exported) | recorded_names(component)
    known |= {name + suffix for name in exported for suffix in HISTOGRAM_SUFFIXES}
    texts = [*dashboard_queries(component)]
    texts += [rule["expr"] for group in rule_groups(component)["groups"]
              for rule in group["rules"]]  # fmt: skip
    return sorted({name for text in texts for name in METRIC.findall(text)} - known)
