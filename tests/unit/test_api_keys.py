"""API keys: the format, the hashes, and the service refusing whatever is not a valid key."""

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import pytest
from flask.testing import FlaskClient

from sentiment.serving.api_keys import ApiKeyRing, KeyFileError, new_key, parse_key_hashes
from sentiment.serving.app import create_app
from sentiment.serving.request_log import ACCESS_LINES
from sentiment.serving.settings import ConfigError
from tests.conftest import make_settings

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
REVIEW = {"review": "The food was great"}


def keyring(*key_ids: str) -> tuple[ApiKeyRing, dict[str, str]]:
    made = {key_id: new_key(key_id, NOW) for key_id in key_ids}
    lines = "\n".join(hash_.line() for _, hash_ in made.values())
    return ApiKeyRing(parse_key_hashes(lines)), {key_id: key for key_id, (key, _) in made.items()}


class TestKeyFormat:
    def test_a_key_is_named_by_its_id_and_its_hash_holds_no_part_of_it(self):
        key, hashed = new_key("acme", NOW)
        assert key.startswith("snt_acme_")
        assert len(key) == len("snt_acme_") + 43
        assert key not in hashed.line()
        assert key[-43:] not in hashed.line()
        assert hashed.line().split() == [
            "acme", hashed.salt.hex(), hashed.digest.hex(), "2026-11-28T12:00:00+00:00",
        ]  # fmt: skip

    def test_two_keys_of_one_id_differ_and_are_salted_differently(self):
        (key_a, hash_a), (key_b, hash_b) = new_key("acme", NOW), new_key("acme", NOW)
        assert key_a != key_b
        assert hash_a.salt != hash_b.salt

    @pytest.mark.parametrize("key_id", ["", "Acme", "a_b", "a b", "-a", "x" * 33, "é"])
    def test_ids_that_would_break_the_format_are_refused(self, key_id):
        with pytest.raises(ValueError, match="not a key id"):
            new_key(key_id, NOW)

    def test_identify_names_the_holder_of_a_valid_key_only(self):
        ring, keys = keyring("acme", "gate")
        assert ring.identify(keys["acme"]) == "acme"
        assert ring.identify(keys["gate"]) == "gate"
        secret = keys["acme"][-43:]
        flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
        for wrong in (
            "", "snt_", "snt_acme_", f"snt_acme_{flipped}", f"snt_gate_{secret}",
            f"snt_nobody_{secret}", keys["acme"] + "x", keys["acme"][:-1], keys["acme"].upper(),
            keys["acme"].replace("snt_", "sk_"), "snt_acme_" + "é" * 43, "x" * 100_000,
        ):  # fmt: skip
            assert ring.identify(wrong) is None, wrong

    def test_comments_and_blank_lines_are_skipped(self):
        key, hashed = new_key("acme", NOW)
        ring = ApiKeyRing(parse_key_hashes(f"# keys of stage\n\n  {hashed.line()}  \n"))
        assert ring.identify(key) == "acme"
        assert len(ring) == 1

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            ("acme 00 11", "expected 'KEY_ID SALT SHA256 CREATED'"),
            ("ACME " + "00" * 16 + " " + "11" * 32 + " now", "'ACME' is not a key id"),
            ("acme zz" + "00" * 15 + " " + "11" * 32 + " now", "the salt and the hash must be hex"),
            ("acme " + "00" * 8 + " " + "11" * 32 + " now", "a 16-byte salt and a sha256"),
            ("acme " + "00" * 16 + " " + "11" * 32 + " nöw", "'nöw' is not a UTC time"),
        ],
    )
    def test_a_broken_line_is_named(self, line, message):
        with pytest.raises(KeyFileError, match=f"hashes, line 2: {message}"):
            parse_key_hashes(f"# one\n{line}\n", "hashes")

    def test_two_keys_per_id_for_rotation_but_not_three(self):
        made = [new_key("acme", NOW) for _ in range(3)]
        two = "\n".join(hashed.line() for _, hashed in made[:2])
        ring = ApiKeyRing(parse_key_hashes(two))
        assert [ring.identify(key) for key, _ in made] == ["acme", "acme", None]
        three = two + "\n" + made[2][1].line()
        with pytest.raises(KeyFileError, match="acme has more than 2 keys"):
            parse_key_hashes(three)


@pytest.fixture
def service_overrides(tmp_path: Path, keys: dict[str, str]) -> dict:
    return {"auth.required": True, "auth.key_hashes_file": tmp_path / "hashes"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class TestTheServiceAsksForKeys:
    PROTECTED: ClassVar = [
        ("post", "/predict/", REVIEW),
        ("post", "/predict", REVIEW),
        ("post", "/v1/predict", {"reviews": ["good"]}),
        ("get", "/v1/model", None),
        ("get", "/metrics", None),
        ("get", "/no/such/path", None),
        ("delete", "/predict/", None),
    ]

    @pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
    @pytest.mark.parametrize(
        "headers",
        [
            {},
            {"Authorization": "Bearer"},
            {"Authorization": "Basic dXNlcjpwYXNz"},
            {"Authorization": "Bearer snt_acme_" + "A" * 43},
            {"X-API-Key": "snt_nobody_" + "A" * 43},
            {"X-API-Key": ""},
        ],
    )
    def test_without_a_valid_key_401_with_no_detail(
        self, client: FlaskClient, keys, method, path, body, headers
    ):
        response = getattr(client, method)(path, json=body, headers=headers)
        assert response.status_code == 401
        assert response.get_json() == {
            "error": {
                "code": "unauthorized",
                "message": "a valid API key is required "
                "(Authorization: Bearer KEY, or X-API-Key: KEY)",
            }
        }
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="sentiment"'
        assert response.headers["X-Request-ID"]

    @pytest.mark.parametrize(
        "headers",
        [
            lambda key: {"Authorization": f"Bearer {key}"},
            lambda key: {"Authorization": f"bearer  {key} "},
            lambda key: {"X-API-Key": key},
        ],
    )
    def test_either_header_lets_a_valid_key_in(self, client: FlaskClient, keys, headers):
        response = client.post("/predict/", json=REVIEW, headers=headers(keys["acme"]))
        assert response.status_code == 200, response.get_json()
        assert client.get("/v1/model", headers=headers(keys["gate"])).status_code == 200

    def test_an_authorization_header_that_is_not_bearer_is_not_overruled(self, client, keys):
        headers = {"Authorization": "Basic x", "X-API-Key": keys["acme"]}
        assert client.post("/predict/", json=REVIEW, headers=headers).status_code == 401

    def test_health_readiness_and_the_api_description_stay_open(self, client: FlaskClient, keys):
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        spec = client.get("/openapi.json").get_json()
        assert spec["paths"]["/predict/"]["post"]["security"] == [{"bearer": []}, {"apiKey": []}]
        assert "401" in spec["paths"]["/metrics"]["get"]["responses"]
        assert "security" not in spec["paths"]["/healthz"]["get"]
        assert set(spec["components"]["securitySchemes"]) == {"bearer", "apiKey"}

    def test_requests_are_counted_per_key_id_and_never_by_key(self, client: FlaskClient, keys):
        for _ in range(3):
            client.post("/predict/", json=REVIEW, headers=bearer(keys["acme"]))
        client.post("/predict/", json=REVIEW, headers=bearer("snt_evil_" + "A" * 43))
        client.get("/v1/model", headers=bearer(keys["gate"]))
        scraped = client.get("/metrics", headers=bearer(keys["prometheus"]))
        metrics = scraped.get_data(as_text=True)
        assert 'sentiment_api_key_requests_total{key_id="acme"} 3.0' in metrics
        assert 'sentiment_api_key_requests_total{key_id="gate"} 1.0' in metrics
        assert "evil" not in metrics
        assert keys["acme"] not in metrics

    def test_only_an_operator_key_sees_which_clients_there_are(self, client, keys):
        """A client's key shows the service's totals, not the other clients' traffic."""
        client.post("/predict/", json=REVIEW, headers=bearer(keys["acme"]))
        seen = client.get("/metrics", headers=bearer(keys["gate"])).get_data(as_text=True)
        assert "sentiment_http_requests_total" in seen
        assert "sentiment_predictions_total" in seen
        assert "key_id" not in seen
        assert "acme" not in seen

    def test_keys_are_never_logged(self, client, keys, caplog: pytest.LogCaptureFixture, capsys):
        caplog.set_level(logging.DEBUG)
        ACCESS_LINES.flush()
        capsys.readouterr()
        client.post("/predict/", json=REVIEW, headers=bearer(keys["acme"]))
        client.post("/v1/predict", json={"reviews": [""]}, headers={"X-API-Key": keys["gate"]})
        wrong = keys["acme"][:-2] + "xy"
        client.post("/predict/", json=REVIEW, headers=bearer(wrong))
        ACCESS_LINES.flush()
        written = capsys.readouterr().err
        access = [json.loads(line) for line in written.splitlines()
                  if '"logger": "sentiment.serving.access"' in line]  # fmt: skip
        assert [line.get("key_id") for line in access] == ["acme", "gate", None]
        logged = written + "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
        for secret in (keys["acme"], keys["gate"], wrong, keys["acme"][-43:]):
            assert secret not in logged

    def test_without_the_hash_file_not_ready_and_nothing_open_that_was_closed(
        self, tmp_path: Path, trained_registry: Path
    ):
        settings = make_settings(
            "test",
            **{
                "model.bundles_dir": trained_registry,
                "auth.required": True,
                "auth.key_hashes_file": tmp_path / "absent",
            },
        )
        client = create_app(settings).test_client()
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.get_json()["error"]["message"].startswith("no API keys are configured")
        assert str(tmp_path) not in ready.get_data(as_text=True)
        response = client.post("/predict/", json=REVIEW)
        assert response.status_code == 503
        assert client.get("/healthz").status_code == 200

    @pytest.mark.parametrize("content", ["", "# no keys yet\n", "broken line\n"])
    def test_an_empty_or_broken_hash_file_is_not_ready(
        self, tmp_path: Path, trained_registry: Path, content: str
    ):
        (tmp_path / "hashes").write_text(content)
        settings = make_settings(
            "test",
            **{
                "model.bundles_dir": trained_registry,
                "auth.required": True,
                "auth.key_hashes_file": tmp_path / "hashes",
            },
        )
        assert create_app(settings).test_client().get("/readyz").status_code == 503


class TestConfig:
    def test_stage_and_prod_require_keys_and_the_others_do_not(self):
        required = {env: make_settings(env).auth.required for env in ("dev", "test", "stage")}
        assert required == {"dev": False, "test": False, "stage": True}
        assert make_settings("prod").auth.required

    def test_a_variable_can_turn_keys_on_but_never_off(self):
        assert make_settings("test", **{"auth.required": True}).auth.required
        with pytest.raises(ConfigError, match="SENTIMENT_AUTH__REQUIRED cannot turn off"):
            make_settings("stage", **{"auth.required": False})

    def test_a_customer_facing_environment_cannot_be_opened_by_a_variable(self):
        with pytest.raises(ConfigError, match=r"auth\.required: API keys are required"):
            make_settings("prod", **{"auth.required": False})
