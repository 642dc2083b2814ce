"""A real gunicorn server per module (or the service at --base-url), reached over HTTP."""

import shutil
from collections.abc import Iterator

import pytest

from tests.conftest import repository_config_only
from tests.integration.server import Server, running_server


@pytest.fixture(scope="package", autouse=True)
def _repository_config_only() -> Iterator[None]:
    with repository_config_only():
        yield


@pytest.fixture(scope="module")
def base_url(request, trained_registry, tmp_path_factory) -> Iterator[str]:
    given = request.config.getoption("--base-url")
    if given:
        yield given.rstrip("/")
        return
    with running_server(tmp_path_factory.mktemp("server"), trained_registry) as server:
        yield server.base_url


@pytest.fixture
def own_server(request):
    """Starts a private server; skipped when the tests target a deployed service."""
    if request.config.getoption("--base-url"):
        pytest.skip("needs its own server; --base-url points at a deployed one")

    def start(workdir, bundles_dir, **options) -> Server:
        context = running_server(workdir, bundles_dir, **options)
        request.addfinalizer(lambda: context.__exit__(None, None, None))
        return context.__enter__()

    return start


# No name resolves but the loopback: a page that needs the internet (a CDN, a validator
# badge, a font) fails to load what it asked for, and says so in its console.
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"


@pytest.fixture
def browser(monkeypatch):
    """Headless Chromium driven by Selenium, offline; skipped where it is not installed."""
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("chromium and chromium-driver are not installed")
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not download a driver
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--no-first-run", OFFLINE):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.binary_location = chromium
    session = webdriver.Chrome(options=options, service=webdriver.ChromeService(driver))
    yield session
    session.quit()
