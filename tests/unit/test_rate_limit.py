"""Rate limits per API key: the budget (GCRA) on a clock the test moves, one table shared by
workers, and the service's 429 on the fast path and through Flask alike."""

import math
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from sentiment.serving.api_keys import KEY_ID
from sentiment.serving.rate_limit import ANONYMOUS, RateLimiter, create_table, retry_after_header
from sentiment.serving.settings.schema import RateLimitSettings
from tests.unit.test_api_keys import REVIEW, bearer


def limits(per_second: float = 10, burst: int = 3, **per_key) -> RateLimitSettings:
    return RateLimitSettings(enabled=True, per_second=per_second, burst=burst, per_key=per_key)


class Clock:
    """The monotonic clock in nanoseconds, moved by the test; a host up for three years."""

    def __init__(self) -> None:
        self.now = 3 * 365 * 24 * 3600 * 10**9

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += round(seconds * 1e9)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def admitted(limiter: RateLimiter, key_id: str | None, requests: int) -> int:
    return sum(limiter.admit(key_id) is None for _ in range(requests))


class TestTheBudget:
    def test_a_burst_then_one_request_per_interval(self, clock):
        limiter = RateLimiter.for_server(limits(per_second=10, burst=3), clock=clock)
        assert admitted(limiter, "acme", 5) == 3
        refused = limiter.admit("acme")
        assert refused is not None
        assert refused.per_second == 10
        assert refused.retry_after == pytest.approx(0.1)
        clock.advance(0.1)
        assert admitted(limiter, "acme", 2) == 1
        clock.advance(1.0)  # ten intervals: the burst is back, not more
        assert admitted(limiter, "acme", 10) == 3

    def test_exactly_the_rate_over_a_long_run(self, clock):
        limiter = RateLimiter.for_server(limits(per_second=50, burst=5), clock=clock)
        total = 0
        for _ in range(1000):  # 10 s, offered at 100/s: twice the rate
            total += admitted(limiter, "acme", 1)
            clock.advance(0.01)
        assert total == 5 + 499  # the burst, then one per 20 ms until the last offer, at 9.99 s

    @pytest.mark.parametrize(("per_second", "burst"), [(1000, 1000), (100, 200), (3, 7)])
    def test_a_whole_burst_however_long_the_host_has_been_up(self, clock, per_second, burst):
        """Whole nanoseconds: no rounding refuses the burst's last request."""
        for uptime_seconds in (10, 10**8, 10**9):  # up to 31 years
            clock.now = uptime_seconds * 10**9
            limiter = RateLimiter.for_server(limits(per_second, burst), clock=clock)
            assert admitted(limiter, "acme", burst + 5) == burst

    def test_a_refused_request_uses_no_budget(self, clock):
        limiter = RateLimiter.for_server(limits(per_second=1, burst=1), clock=clock)
        assert admitted(limiter, "acme", 100) == 1
        clock.advance(1.0)
        assert admitted(limiter, "acme", 1) == 1

    def test_each_key_has_its_own_budget_and_no_key_shares_one(self, clock):
        limiter = RateLimiter.for_server(limits(per_second=1, burst=2), clock=clock)
        assert admitted(limiter, "acme", 5) == 2
        assert admitted(limiter, "globex", 5) == 2
        assert admitted(limiter, None, 5) == 2
        assert admitted(limiter, ANONYMOUS, 5) == 0
        assert KEY_ID.fullmatch(ANONYMOUS) is None  # no key id can be the shared one

    def test_a_key_of_its_own_limit_or_none(self, clock):
        settings = limits(per_second=1, burst=1, gate=None, big={"per_second": 5, "burst": 4})
        limiter = RateLimiter.for_server(settings, clock=clock)
        assert admitted(limiter, "gate", 10_000) == 10_000
        assert admitted(limiter, "big", 10) == 4
        assert admitted(limiter, "acme", 10) == 1

    def test_retry_after_is_whole_seconds_rounded_up(self, clock):
        limiter = RateLimiter.for_server(limits(per_second=0.25, burst=1), clock=clock)
        limiter.admit("acme")
        refused = limiter.admit("acme")
        assert refused.retry_after == pytest.approx(4.0)
        assert retry_after_header(refused) == "4"
        clock.advance(3.5)
        assert retry_after_header(limiter.admit("acme")) == "1"
        assert math.isclose(limiter.admit("acme").retry_after, 0.5)


class TestOneTableForAllWorkers:
    def test_workers_on_the_servers_table_share_each_keys_budget(
        self, tmp_path, monkeypatch, clock
    ):
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
        create_table(tmp_path)
        workers = [RateLimiter.for_server(limits(per_second=1, burst=4), clock=clock)
                   for _ in range(2)]  # fmt: skip
        assert admitted(workers[0], "acme", 3) == 3
        assert admitted(workers[1], "acme", 3) == 1
        assert admitted(workers[1], "globex", 1) == 1
        assert admitted(workers[0], "globex", 5) == 3
        # A new table (gunicorn started again) starts every budget afresh.
        create_table(tmp_path)
        assert admitted(RateLimiter.for_server(limits(per_second=1, burst=4), clock=clock),
                        "acme", 5) == 4  # fmt: skip

    def test_without_a_server_table_a_process_keeps_its_own(self, tmp_path, monkeypatch, clock):
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # no table in it
        first = RateLimiter.for_server(limits(per_second=1, burst=2), clock=clock)
        second = RateLimiter.for_server(limits(per_second=1, burst=2), clock=clock)
        assert admitted(first, "acme", 3) == 2
        assert admitted(second, "acme", 3) == 2

    def test_a_full_table_lets_new_ids_in(self, clock, monkeypatch):
        monkeypatch.setattr("sentiment.serving.rate_limit.SLOTS", 4)
        limiter = RateLimiter.for_server(limits(per_second=1, burst=1), clock=clock)
        for key_id in ("a", "b", "c", "d"):
            assert admitted(limiter, key_id, 2) == 1
        assert admitted(limiter, "e", 3) == 3
        assert admitted(limiter, "a", 1) == 0


@pytest.fixture
def service_overrides(tmp_path: Path, keys) -> dict:
    return {"auth.required": True, "auth.key_hashes_file": tmp_path / "hashes",
            "rate_limit.enabled": True, "rate_limit.per_second": 0.001,
            "rate_limit.burst": 2}  # fmt: skip


class TestTheService:
    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [("post", "/predict/", REVIEW), ("post", "/v1/predict", {"reviews": ["good"]}),
         ("get", "/v1/model", None)],
        ids=["classic", "batch", "flask"],
    )  # fmt: skip
    def test_over_the_limit_429_with_retry_after_and_a_json_error(
        self, client: FlaskClient, keys, method, path, body
    ):
        call = getattr(client, method)
        for _ in range(2):
            assert call(path, json=body, headers=bearer(keys["acme"])).status_code == 200
        refused = call(path, json=body, headers=bearer(keys["acme"]))
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "1000"
        assert refused.headers["X-Request-ID"]
        assert refused.get_json() == {"error": {
            "code": "rate_limited",
            "message": "over this key's rate limit of 0.001 requests per second; "
                       "retry after 1000 s",
        }}  # fmt: skip
        # Another key, and the gates' (not limited), are not held back.
        assert call(path, json=body, headers=bearer(keys["gate"])).status_code == 200
        for _ in range(5):
            assert call(path, json=body, headers=bearer(keys["gate"])).status_code == 200

    def test_a_refused_body_still_uses_its_request(self, client, keys):
        headers = bearer(keys["acme"])
        assert client.post("/v1/predict", json={"reviews": []}, headers=headers).status_code == 422
        assert client.post("/predict/", json=REVIEW, headers=headers).status_code == 200
        assert client.post("/predict/", json=REVIEW, headers=headers).status_code == 429

    def test_no_valid_key_uses_no_budget_and_open_endpoints_are_not_limited(self, client, keys):
        for _ in range(5):
            assert client.post("/predict/", json=REVIEW, headers=bearer("wrong")).status_code == 401
            for path in ("/healthz", "/readyz", "/openapi.json"):
                assert client.get(path).status_code == 200
        headers = bearer(keys["acme"])
        assert [client.post("/predict/", json=REVIEW, headers=headers).status_code
                for _ in range(3)] == [200, 200, 429]  # fmt: skip

    def test_refusals_are_counted_by_key_id_for_operators_only(self, client, keys):
        for _ in range(4):
            client.post("/predict/", json=REVIEW, headers=bearer(keys["acme"]))
        operator = client.get("/metrics", headers=bearer(keys["prometheus"]))
        assert 'sentiment_rate_limited_total{key_id="acme"} 2.0' in operator.get_data(True)
        tenant = client.get("/metrics", headers=bearer(keys["gate"])).get_data(as_text=True)
        assert "sentiment_http_requests_total" in tenant
        assert "key_id" not in tenant


def test_without_keys_every_caller_shares_one_budget(trained_registry, tmp_path):
    from sentiment.serving.app import create_app
    from tests.conftest import make_settings

    settings = make_settings("test", **{
        "model.bundles_dir": trained_registry, "monitoring.dir": tmp_path,
        "rate_limit.enabled": True, "rate_limit.per_second": 0.001, "rate_limit.burst": 1,
    })  # fmt: skip
    client = create_app(settings).test_client()
    assert client.post("/predict/", json=REVIEW).status_code == 200
    refused = client.post("/predict/", json=REVIEW, headers={"X-API-Key": "anything"})
    assert refused.status_code == 429


def test_stage_and_prod_limit_keys_and_the_gates_key_is_not_limited():
    from tests.conftest import make_settings

    for environment, enabled in (("dev", False), ("test", False), ("stage", True),
                                 ("prod", True)):  # fmt: skip
        settings = make_settings(environment).rate_limit
        assert settings.enabled is enabled
        assert settings.per_key["gate"] is None


def test_the_scoring_endpoints_and_flask_s_send_one_429(client, keys):
    """One middleware refuses for every endpoint: the same answer, whoever was asked."""
    headers = bearer(keys["acme"])
    for _ in range(2):
        client.post("/predict/", json=REVIEW, headers=headers)
    scoring = client.post("/predict/", json=REVIEW, headers={**headers, "X-Request-ID": "r-1"})
    flask = client.get("/v1/model", headers={**headers, "X-Request-ID": "r-1"})
    assert scoring.status_code == flask.status_code == 429
    assert scoring.get_data() == flask.get_data()
    assert dict(scoring.headers) == dict(flask.headers)


def test_the_document_has_the_429_only_where_limits_are_on(client, trained_registry):
    document = client.get("/openapi.json").get_json()
    predict = document["paths"]["/predict/"]["post"]["responses"]
    assert predict["429"]["headers"]["Retry-After"]["schema"]["minimum"] == 1
    assert "429" not in document["paths"]["/healthz"]["get"]["responses"]
    from sentiment.serving.app import create_app
    from tests.conftest import make_settings

    unlimited = create_app(make_settings("dev", **{"model.bundles_dir": trained_registry}))
    document = unlimited.test_client().get("/openapi.json").get_json()
    assert all("429" not in operation["responses"] for methods in document["paths"].values()
               for operation in methods.values())  # fmt: skip
