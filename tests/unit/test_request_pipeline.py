"""The one request pipeline: middlewares in front of the scoring endpoints and of Flask,
each concern in one place, whichever endpoint is asked."""

import io

import pytest

from sentiment.serving import state as state_module
from sentiment.serving.app import create_app
from sentiment.serving.rate_limit import RateLimiter
from sentiment.serving.settings.schema import RateLimitSettings
from tests.unit.test_api_keys import REVIEW, bearer
from tests.unit.test_rate_limit import Clock, admitted


@pytest.fixture
def service_overrides(tmp_path, keys) -> dict:
    return {"auth.required": True, "auth.key_hashes_file": tmp_path / "hashes",
            "auth.refusals": '{"per_second": 0.001, "burst": 3}'}  # fmt: skip


def test_the_api_description_is_built_once_at_start(settings, monkeypatch):
    built = []
    real = state_module.build_spec
    monkeypatch.setattr(state_module, "build_spec", lambda *a: built.append(1) or real(*a))
    client = create_app(settings).test_client()
    answers = {client.get("/openapi.json").get_data() for _ in range(20)}
    assert len(built) == 1
    assert len(answers) == 1


@pytest.mark.parametrize("method", ["GET", "PUT", "HEAD", "OPTIONS"])
def test_scoring_endpoints_answer_other_methods_405_with_allow(client, keys, method):
    response = client.open("/predict/", method=method, headers=bearer(keys["acme"]))
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    if method != "HEAD":
        assert response.get_json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("method", "path", "key"),
    [("POST", "/predict/", "acme"), ("POST", "/v1/predict", None), ("GET", "/v1/model", "acme"),
     ("GET", "/healthz", None), ("GET", "/nowhere", "acme")],
)  # fmt: skip
def test_every_answer_has_the_security_headers_once_and_a_request_id(
    client, keys, method, path, key
):
    headers = bearer(keys[key]) if key else {}
    response = client.open(path, method=method, json=REVIEW, headers=headers)
    for name, value in (("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store")):
        assert response.headers.getlist(name) == [value]
    assert len(response.headers.getlist("X-Request-ID")) == 1


class Exploding(io.RawIOBase):
    """A body the server cannot decode: its own error type, as gunicorn raises for a bad
    chunk size."""

    def read(self, size=-1):
        raise type("InvalidChunkSize", (Exception,), {})("bad chunk size")

    def readinto(self, buffer):
        self.read()


@pytest.mark.parametrize("path", ["/predict/", "/v1/feedback"])
def test_an_unreadable_body_is_a_400_wherever_it_goes(client, keys, path):
    response = client.post(path, headers={**bearer(keys["acme"]), "Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input": Exploding(),
                                              "wsgi.input_terminated": True})  # fmt: skip
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "malformed_body"
    assert "InvalidChunkSize" in response.get_json()["error"]["message"]


def test_refusals_are_limited_per_address_and_never_touch_a_valid_key(client, keys):
    wrong = bearer("snt_acme_" + "B" * 43)
    here = {"REMOTE_ADDR": "203.0.113.7"}
    codes = [client.post("/predict/", json=REVIEW, headers=wrong,
                         environ_base=here).status_code for _ in range(5)]  # fmt: skip
    assert codes == [401, 401, 401, 429, 429]
    refused = client.post("/predict/", json=REVIEW, headers=wrong, environ_base=here)
    assert refused.get_json()["error"]["message"].startswith(
        "over the failed API-key checks allowed from this address"
    )
    # Another address has its own budget; a valid key from the refused address is let in.
    elsewhere = client.post("/predict/", json=REVIEW, headers=wrong,
                            environ_base={"REMOTE_ADDR": "2001:db8::1"})  # fmt: skip
    assert elsewhere.status_code == 401
    good = client.post("/predict/", json=REVIEW, headers=bearer(keys["acme"]), environ_base=here)
    assert good.status_code == 200


def test_ids_that_come_and_go_never_fill_the_table_for_good(monkeypatch):
    """Found under attack: every new address took a slot for ever, so once the table was
    full, new ids (new keys too) went unlimited. A slot whose budget is whole again is
    taken over."""
    monkeypatch.setattr("sentiment.serving.rate_limit.SLOTS", 8)
    clock = Clock()
    limits = RateLimitSettings(enabled=True, per_second=1, burst=1, per_key={})
    limiter = RateLimiter.for_server(limits, clock=clock)
    other = RateLimiter(limits, limiter._file, clock=clock)  # another worker, same table
    for n in range(8):
        assert admitted(limiter, f"@address-{n}", 2) == 1
    assert admitted(limiter, "newcomer", 3) == 3  # full of busy ids: let in, and warned
    clock.advance(5)  # every budget whole again
    assert admitted(other, "acme", 3) == 1  # a slot taken over: acme is limited
    assert admitted(limiter, "acme", 1) == 0  # in every worker
    assert admitted(limiter, "@address-0", 2) == 1  # and a returning id gets a slot again
