"""A load-test profile against a real server: locust driven by the profile's shape with
the dataset's reviews and the key, the run kept with its reports (the comparison with an
earlier run is tested in tests/unit/test_loadtest.py)."""

import pytest

from sentiment_release.cli.workspace import Workspace
from sentiment_release.delivery.api_keys import ApiKeyStore
from sentiment_release.loadtest.profiles import LoadTestConfig, Profile
from sentiment_release.loadtest.run import LoadTester, Target
from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.project import Project
from tests.conftest import FIXTURE_DATA

pytestmark = pytest.mark.integration


def test_a_profile_runs_with_the_key_and_is_kept_with_its_reports(
    own_server, trained_registry, tmp_path, monkeypatch
):
    monkeypatch.setenv("DELIVERY_STATE_DIR", str(tmp_path / "state"))
    store = ApiKeyStore(tmp_path / "api-keys")
    key = store.create("stage", "loader")
    server = own_server(tmp_path / "server", trained_registry, workers=1, settings={
        "SENTIMENT_AUTH__REQUIRED": "true",
        "SENTIMENT_AUTH__KEY_HASHES_FILE": str(store.hashes_file("stage")),
    })  # fmt: skip
    steps = Profile(description="Two short steps.", max_failure_ratio=0.0, stages=[
        {"seconds": 2, "users": 2, "spawn_rate": 2}, {"seconds": 2, "users": 6, "spawn_rate": 6},
    ])  # fmt: skip
    config = LoadTestConfig(locustfile="tests/load/locustfile.py", shapes="tests/load/shapes.py",
                            user_class="ApiClient", profiles={"steps": steps})  # fmt: skip
    messages: list[str] = []
    tester = LoadTester(Workspace(Project.here(), data_dir=FIXTURE_DATA), config, messages.append)

    first = tester.run(Target("url-local", server.base_url, key, None, None), "steps")
    assert first.passed, first.report
    overall = first.summary.overall
    assert overall["requests"] > 20
    assert overall["failures"] == 0  # the key reached locust's clients
    assert first.summary.reviews.endswith("reviews of the dataset")
    assert {row["name"] for row in first.summary.endpoints} >= {"POST /predict/", "GET /healthz"}
    assert first.summary.stage_figures[-1]["users"] == 6
    assert 3 <= first.summary.seconds <= 8  # the stages (4 s), not locust start-up
    for name in ("report.html", "locust_stats.csv", "summary.json", "summary.md"):
        assert (first.directory / name).is_file(), name
    assert first.directory.parent == tmp_path / "state" / "loadtests" / "url-local"
    assert first.previous is None

    # A key the service does not know: the service cannot say which environment it is,
    # so the run is refused before locust starts unless confirmed by the target's name.
    stranger = Target("url-local", server.base_url, "snt_stranger_" + "A" * 43, None, None)
    with pytest.raises(ReleaseError, match="--confirm url-local"):
        tester.run(stranger, "steps")
    assert len(list(first.directory.parent.iterdir())) == 1
