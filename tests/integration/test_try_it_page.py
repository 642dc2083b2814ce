"""The try-it page in a real browser (headless Chromium driven by Selenium, offline): a
review is scored as the API scores it, and a bad one gets a clear message."""

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as until
from selenium.webdriver.support.wait import WebDriverWait

from sentiment_release.delivery.api_keys import ApiKeyStore

pytestmark = pytest.mark.integration

REVIEW = "The food was great and the staff were lovely."


@pytest.fixture
def page(own_server, trained_registry, tmp_path, browser):
    server = own_server(tmp_path, trained_registry, workers=1)
    browser.get(f"{server.base_url}/")
    WebDriverWait(browser, 10).until(until.text_to_be_present_in_element((By.ID, "about"), "Model"))
    return server, browser


def submit(browser, review: str, typed: bool = True) -> None:
    box = browser.find_element(By.ID, "review")
    if typed:
        box.send_keys(review)
    else:  # past the textarea, as a paste or a script could
        browser.execute_script("arguments[0].value = arguments[1]", box, review)
    browser.find_element(By.ID, "score").click()


def test_a_typed_review_is_scored_as_the_api_scores_it(page):
    server, browser = page
    model = requests.get(f"{server.base_url}/v1/model", timeout=5).json()
    about = browser.find_element(By.ID, "about").text
    assert about == f"Model {model['model']['version']}, served in test."
    submit(browser, REVIEW)
    WebDriverWait(browser, 10).until(until.visibility_of_element_located((By.ID, "result")))
    expected = requests.post(f"{server.base_url}/v1/predict", json={"reviews": [REVIEW]},
                             timeout=5).json()["predictions"][0]  # fmt: skip
    assert browser.find_element(By.ID, "label").text == expected["label"]
    assert browser.find_element(By.ID, "positive").text == f"{expected['positive']:.3f}"
    assert browser.find_element(By.ID, "model").text == model["model"]["version"]
    assert len(browser.find_element(By.ID, "request").text) == 32
    assert browser.find_element(By.ID, "count").text == f"{len(REVIEW)} / 5000 characters"


@pytest.mark.parametrize(
    ("review", "message"),
    [
        ("   ", "Type a review first."),
        ("x" * 5001, "The review is 5001 characters long; the limit is 5000."),
        # Past the page's own checks, the API's message is shown as it is.
        ("bad \x00 text", "reviews[0] contains a NUL character"),
    ],
    ids=["empty", "oversize", "refused by the API"],
)
def test_a_review_that_cannot_be_scored_gets_a_clear_message(page, review, message):
    _, browser = page
    submit(browser, review, typed=False)
    WebDriverWait(browser, 10).until(until.visibility_of_element_located((By.ID, "error")))
    assert message in browser.find_element(By.ID, "error").text
    assert not browser.find_element(By.ID, "result").is_displayed()


def test_where_keys_are_required_the_page_asks_for_one_and_sends_it(
    own_server, trained_registry, tmp_path, browser
):
    store = ApiKeyStore(tmp_path / "api-keys")
    key = store.create("stage", "people")
    settings = {"SENTIMENT_AUTH__REQUIRED": "true",
                "SENTIMENT_AUTH__KEY_HASHES_FILE": str(store.hashes_file("stage"))}  # fmt: skip
    server = own_server(tmp_path / "server", trained_registry, workers=1, settings=settings)
    browser.get(f"{server.base_url}/")
    about = browser.find_element(By.ID, "about")
    WebDriverWait(browser, 10).until(lambda _: "API key" in about.text)
    assert about.text == "Type your API key to use the model."
    submit(browser, REVIEW)
    WebDriverWait(browser, 10).until(until.visibility_of_element_located((By.ID, "error")))
    assert browser.find_element(By.ID, "error").text == "Type your API key first."

    key_box = browser.find_element(By.ID, "key")
    assert key_box.get_attribute("type") == "password"
    key_box.send_keys(key[:-1] + ("B" if key[-1] == "A" else "A"))
    browser.find_element(By.ID, "score").click()
    WebDriverWait(browser, 10).until(
        until.text_to_be_present_in_element((By.ID, "error"), "a valid API key is required")
    )
    key_box.clear()
    key_box.send_keys(key)
    browser.find_element(By.ID, "score").click()
    WebDriverWait(browser, 10).until(until.visibility_of_element_located((By.ID, "result")))
    assert browser.find_element(By.ID, "label").text in ("positive", "negative")
    WebDriverWait(browser, 10).until(until.text_to_be_present_in_element((By.ID, "about"), "Model"))
    assert key not in server.logs()
