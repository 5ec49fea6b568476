"""Headless Debian chromium for the UI tests (test_ui.py, test_qwen3_mini.py): the `browser` fixture, waiting for
text on screen, screenshots. Installs nothing: chromium and chromium-driver come from `make browser`."""

import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), (
        "Debian chromium/chromium-driver missing: run `make browser` (apt-get install -y chromium chromium-driver)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1000",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def visible_text(driver, text: str, timeout: float = 60):
    """Wait until an element whose own text is ``text`` is displayed; return it."""
    xpath = f"//*[normalize-space(text())={text!r}]"
    try:
        return WebDriverWait(driver, timeout, poll_frequency=1).until(
            lambda d: next((e for e in d.find_elements(By.XPATH, xpath) if e.is_displayed()), False))
    except TimeoutException:
        body = driver.find_element(By.TAG_NAME, "body").text
        raise AssertionError(f"{text!r} not visible on {driver.current_url}; page text:\n{body[:2000]}") from None


def shoot(driver, path: Path) -> Path:
    time.sleep(2)  # let charts and fonts settle before the screenshot
    assert driver.save_screenshot(str(path)), f"screenshot to {path} failed"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path
