"""/docs in a real browser with no network but the loopback: Swagger UI renders every
operation of /openapi.json from the image's own files, with nothing blocked by the page's
policy, and its "Try it out" scores a review with an API key typed into "Authorize"."""

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as until
from selenium.webdriver.support.wait import WebDriverWait

from sentiment_release.delivery.api_keys import ApiKeyStore
from tests.integration.server import running_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(request, trained_registry, tmp_path_factory):
    """One server for the module (keys and rate limits on), unless tests target another."""
    if request.config.getoption("--base-url"):
        pytest.skip("needs its own server; --base-url points at a deployed one")
    workdir = tmp_path_factory.mktemp("docs")
    store = ApiKeyStore(workdir / "api-keys")
    key = store.create("stage", "docs-reader")
    settings = {"SENTIMENT_AUTH__REQUIRED": "true", "SENTIMENT_RATE_LIMIT__ENABLED": "true",
                "SENTIMENT_AUTH__KEY_HASHES_FILE": str(store.hashes_file("stage"))}  # fmt: skip
    with running_server(workdir / "server", trained_registry, workers=1,
                        settings=settings) as server:  # fmt: skip
        yield server, key


@pytest.fixture
def docs(served, browser):
    server, key = served
    browser.get(f"{server.base_url}/docs")
    WebDriverWait(browser, 20).until(
        until.presence_of_element_located((By.CSS_SELECTOR, ".opblock-summary"))
    )
    return server, browser, key


def test_every_operation_renders_from_the_service_alone(docs):
    server, browser, _ = docs
    document = requests.get(f"{server.base_url}/openapi.json", timeout=5).json()
    operations = [(method.upper(), path) for path, methods in document["paths"].items()
                  for method in methods]  # fmt: skip
    shown = [
        (block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text,
         block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path"))
        for block in browser.find_elements(By.CSS_SELECTOR, ".opblock")
    ]  # fmt: skip
    assert sorted(shown) == sorted(operations)
    assert browser.find_element(By.CSS_SELECTOR, ".info .title").text.startswith("Sentiment API")
    assert browser.find_elements(By.CSS_SELECTOR, ".auth-wrapper .authorize")
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(entry => entry.name)"
    )
    assert loaded
    assert all(name.startswith(f"{server.base_url}/") for name in loaded), loaded
    problems = [entry["message"] for entry in browser.get_log("browser")
                if entry["level"] == "SEVERE"]  # fmt: skip
    assert problems == []


def test_try_it_out_scores_a_review_with_the_key_typed_into_authorize(docs):
    server, browser, key = docs
    wait = WebDriverWait(browser, 10)
    browser.find_element(By.CSS_SELECTOR, ".auth-wrapper .authorize").click()
    bearer = wait.until(lambda _: browser.find_elements(By.CSS_SELECTOR, ".auth-container"))[0]
    bearer.find_element(By.TAG_NAME, "input").send_keys(key)
    bearer.find_element(By.CSS_SELECTOR, "button.authorize").click()
    wait.until(lambda _: bearer.find_elements(By.CSS_SELECTOR, "button.btn-done"))
    bearer.find_element(By.CSS_SELECTOR, "button.btn-done").click()

    operation = browser.find_element(By.ID, "operations-scoring-predictBatch")
    operation.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    wait.until(lambda _: operation.find_elements(By.CSS_SELECTOR, ".try-out__btn"))
    operation.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
    operation.find_element(By.CSS_SELECTOR, ".execute").click()
    status = wait.until(lambda _: operation.find_elements(
        By.CSS_SELECTOR, ".live-responses-table .response .response-col_status"
    ))  # fmt: skip
    assert status[0].text == "200"
    body = operation.find_element(By.CSS_SELECTOR, ".live-responses-table .microlight").text
    assert '"predictions"' in body
    assert '"label"' in body
    assert key not in server.logs()
