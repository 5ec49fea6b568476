"""The Prefect UI shows the run history: Debian's chromium (headless, via selenium and Debian's chromedriver)
opens the tiny run's flow-run page and its metrics-table artifact page on the server of conftest.py, saves
screenshots and checks that the run name and the metrics table are on screen. Installs nothing: chromium and
chromium-driver come from `make browser` (a `make test` prerequisite), selenium from the `test` extra."""

import json
import os
import shutil
import urllib.request
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from uishots import browser, shoot, visible_text  # noqa: F401 - browser is a fixture

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_ui_calls_the_api_on_its_own_port(stack):
    """`make server PREFECT_PORT=N` must tell the UI that its API is on N, not Prefect's default 4200
    (issue 23: every page said "Can't connect to Server API"). The pages below load data only if it does."""
    with urllib.request.urlopen(f"{stack.url}/ui-settings", timeout=10) as r:
        settings = json.loads(r.read())
    assert settings["api_url"] == f"{stack.url}/api" and not stack.url.endswith(":4200"), settings


def test_flow_run_page_shows_the_run(stack, tiny_run, browser, tmp_path_factory):
    shots = tmp_path_factory.mktemp("screenshots")
    browser.get(f"{stack.url}/runs/flow-run/{tiny_run.id}")
    visible_text(browser, tiny_run.name)        # "vr-em-smoke", the flow_run_name template
    visible_text(browser, "Completed")
    visible_text(browser, "tiny")               # the deployment
    assert "Can't connect to Server API" not in browser.find_element(By.TAG_NAME, "body").text
    shot = shoot(browser, shots / "flow-run.png")
    if os.environ.get("VR_UPDATE_SCREENSHOT"):  # README's docs/ui-flow-run.png; a plain test run leaves the tree clean
        shutil.copyfile(shot, ROOT / "docs" / "ui-flow-run.png")


def test_artifact_page_shows_the_metrics_table(stack, tiny_run, browser, tmp_path_factory):
    shots = tmp_path_factory.mktemp("screenshots")

    async def table_id(client):
        art = await client.read_latest_artifacts()
        return {a.key: a.latest_id for a in art}["vr-em-smoke-accuracy"]

    browser.get(f"{stack.url}/artifacts/artifact/{stack.api(table_id)}")
    visible_text(browser, "vr-em-smoke-accuracy")
    visible_text(browser, tiny_run.name)        # the artifact links back to its flow run
    for cell in ("sft", "em-acc", "em-gml"):
        visible_text(browser, cell)
    [table] = [t for t in browser.find_elements(By.TAG_NAME, "table") if t.is_displayed()]
    header = [h.text.strip() for h in table.find_elements(By.TAG_NAME, "th")]
    assert header[:3] == ["method", "round", "accuracy"], header
    rows = [r.text.split() for r in table.find_elements(By.CSS_SELECTOR, "tbody tr") if r.is_displayed()]
    assert [r[:2] for r in rows] == [["sft", "0"], ["em-acc", "1"], ["em-gml", "1"]], rows
    shoot(browser, shots / "artifact-table.png")

    browser.get(f"{stack.url}/artifacts")
    visible_text(browser, "vr-em-smoke-report")
    visible_text(browser, "vr-em-smoke-run-info")
    shoot(browser, shots / "artifacts.png")
