"""Soft launch (sentiment/serving/soft_launch.py): a challenger the image carries beside the
champion, in the shadows (scored after the answer, agreement counted and audited) or as a
canary (answering a stable share of the clients, saying so)."""

import json
import shutil
from pathlib import Path

import pytest

from sentiment.model import ModelFolder
from sentiment.model.publish import export, set_current
from sentiment.serving.app import create_app
from sentiment.serving.soft_launch import place
from sentiment_release.delivery.champion import ChampionPin, PinnedModel
from sentiment_release.observe.audit_log import AuditLog
from tests.conftest import make_settings, train_fixture_model
from tests.unit.test_monitoring import metric

DIGEST_A, DIGEST_B = "sha256:" + "a" * 64, "sha256:" + "b" * 64
CANARY = {"model.challenger.mode": "canary", "model.challenger.canary_share": 0.5}
SHADOW = {"model.challenger.mode": "shadow"}


@pytest.fixture(scope="module")
def two_models(trained_registry, tmp_path_factory) -> tuple[Path, str, str]:
    """A registry whose current model is the session's and whose CHALLENGER is another."""
    root = tmp_path_factory.mktemp("soft-launch") / "models"
    shutil.copytree(trained_registry, root)
    registry = ModelFolder(root)
    champion = registry.current_version()
    challenger = train_fixture_model(root, **{"training.classifier.C": 0.05}).published.version
    set_current(registry, champion)
    registry.challenger_file.write_text(f"{challenger}\n")
    return root, champion, challenger


def app_with(two_models, tmp_path, **settings):
    root, _, _ = two_models
    overrides = {"model.bundles_dir": root, "monitoring.dir": tmp_path / "volume", **settings}
    app = create_app(make_settings("test", **overrides))
    return app, app.test_client()


def events(tmp_path, client) -> list[dict]:
    assert client.application.extensions["sentiment"].recorder.flush()
    return list(AuditLog(tmp_path / "volume").events())


def test_a_place_is_stable_and_spread_evenly():
    assert place("client-1") == place("client-1")
    shares = [place(f"request-{n}") for n in range(20_000)]
    assert all(0 <= share < 1 for share in shares)
    assert sum(share < 0.1 for share in shares) / len(shares) == pytest.approx(0.1, abs=0.01)


def test_a_canary_answers_its_share_of_clients_and_says_so(two_models, tmp_path):
    _, champion, challenger = two_models
    _, client = app_with(two_models, tmp_path, **CANARY)
    seen = {}
    for number in range(40):
        request_id = f"client-{number}"
        answers = [client.post("/predict/", json={"review": "good food"},
                               headers={"X-Request-ID": request_id}) for _ in range(2)]  # fmt: skip
        sides = {a.headers["X-Answered-By"] for a in answers}
        assert len(sides) == 1, "one client, one model"
        side = sides.pop()
        version = answers[0].get_json()["model_version"]
        assert version == (challenger if side == "challenger" else champion)
        assert side == ("challenger" if place(request_id) < 0.5 else "champion")
        seen[request_id] = side
    assert set(seen.values()) == {"champion", "challenger"}
    audited = {e["request_id"]: e["answered_by"] for e in events(tmp_path, client)}
    assert audited == seen
    assert metric(client, "sentiment_challenger_loaded") == 1


def test_in_the_shadows_the_champion_answers_and_agreement_is_counted(two_models, tmp_path):
    _, champion, challenger = two_models
    _, client = app_with(two_models, tmp_path, **SHADOW)
    reviews = ["good food", "awful service", "fine", "great place, nice staff"]
    answer = client.post("/v1/predict", json={"reviews": reviews})
    assert answer.get_json()["model_version"] == champion
    assert "X-Answered-By" not in answer.headers
    [event] = events(tmp_path, client)
    shadow = event["shadow"]
    assert shadow["version"] == challenger
    assert len(shadow["scores"]) == len(shadow["agree"]) == len(reviews)
    labels = [p["label"] for p in event["predictions"]]
    theirs = ["positive" if s >= 0.5 else "negative" for s in shadow["scores"]]
    assert shadow["agree"] == [a == b for a, b in zip(labels, theirs, strict=True)]
    assert metric(client, "sentiment_shadow_reviews_total") == len(reviews)
    assert metric(client, "sentiment_shadow_agreements_total") == sum(shadow["agree"])


def test_a_shadow_share_of_zero_shadows_nothing(two_models, tmp_path):
    _, client = app_with(two_models, tmp_path, **SHADOW, **{"model.challenger.shadow_share": 0})
    client.post("/predict/", json={"review": "good"})
    [event] = events(tmp_path, client)
    assert "shadow" not in event
    assert metric(client, "sentiment_shadow_reviews_total") == 0


def test_without_a_challenger_in_the_image_the_champion_serves_alone(trained_registry, tmp_path):
    settings = {"model.bundles_dir": trained_registry, "monitoring.dir": tmp_path, **CANARY}
    app = create_app(make_settings("test", **settings))
    client = app.test_client()
    answer = client.post("/predict/", json={"review": "good"})
    assert answer.status_code == 200
    assert "X-Answered-By" not in answer.headers  # no canary runs
    assert metric(client, "sentiment_challenger_loaded") == 0
    assert client.get("/readyz").status_code == 200


def test_an_image_carries_the_challenger_beside_the_champion(two_models, tmp_path):
    root, champion, challenger = two_models
    exported = export(ModelFolder(root), champion, tmp_path / "image-models", challenger)
    image = ModelFolder(tmp_path / "image-models")
    assert (exported.version, image.current_version()) == (champion, champion)
    assert image.challenger_version() == challenger
    assert image.load(challenger).metadata.version == challenger
    assert json.loads((image.path_of(challenger) / "metadata.json").read_text())


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"challenger": {"digest": DIGEST_B, "version": "v"}}, "pin one first"),
        ({"digest": DIGEST_A, "version": "v", "challenger": {"digest": DIGEST_A, "version": "v"}},
         "the challenger is the champion"),
    ],
)  # fmt: skip
def test_a_challenger_needs_a_champion_other_than_itself(fields, message):
    with pytest.raises(ValueError, match=message):
        ChampionPin.model_validate(fields)
    ok = ChampionPin(digest=DIGEST_A, version="v1",
                     challenger=PinnedModel(digest=DIGEST_B, version="v2"))  # fmt: skip
    assert ok.challenger.version == "v2"
