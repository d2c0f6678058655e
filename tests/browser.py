"""A real headless Chromium (Debian's `chromium` and `chromium-driver`) driven by Selenium.

Without the browser the tests that need it are skipped, except under `CI=true`, where a
missing browser is a failure: CI installs it (`.ci/run`)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

ARTIFACTS = Path(os.environ.get("BANDITREC_TEST_ARTIFACTS", "test-artifacts"))
_BINARIES = ("chromium", "chromium-browser", "google-chrome")


def _find(names: tuple[str, ...]) -> str | None:
    return next((p for n in names if (p := shutil.which(n))), None)


@pytest.fixture(scope="module")
def chromium() -> Iterator:
    binary, driver = _find(_BINARIES), _find(("chromedriver",))
    if binary is None or driver is None:
        msg = "no Chromium and chromedriver (apt-get install chromium chromium-driver)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument("--window-size=1366,900")  # a laptop screen
    browser = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    browser.set_page_load_timeout(30)
    yield browser
    browser.quit()
