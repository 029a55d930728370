"""The hub in a real browser: headless Debian Chromium driven by Playwright (no browser download).

Screenshots (desktop and a 412 px wide phone) are saved under ``artifacts/screenshots`` (or
``$GANHUB_ARTIFACTS``) for people to look at.
"""

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from apps import APP_NAMES
from tests.support.live import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("GANHUB_ARTIFACTS", REPO_ROOT / "artifacts")) / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def hub_url():
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "apps.hub", "--port", str(port)], cwd=REPO_ROOT,
                               env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            urllib.request.urlopen(url + "/", timeout=2)
            break
        except OSError:
            if process.poll() is not None or time.time() > deadline:
                process.kill()
                pytest.fail("the hub did not start")
            time.sleep(0.5)
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield playwright, chromium
        chromium.close()


def watch_console(page) -> list[str]:
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def test_landing_page_in_a_browser(hub_url, browser):
    _, chromium = browser
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    errors = watch_console(page)
    page.goto(hub_url + "/", wait_until="networkidle")
    links = page.locator("section h2 a")
    assert sorted(links.evaluate_all("els => els.map(e => e.getAttribute('href'))")) == sorted(f"{n}/" for n in APP_NAMES)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "hub_landing.png"), full_page=True)
    assert errors == []


def run_inpaint(page, hub_url: str) -> None:
    examples = REPO_ROOT / "apps" / "inpaint" / "examples"
    page.goto(hub_url + "/inpaint/", wait_until="networkidle")
    page.get_by_role("tab", name="Upload a mask").click()
    page.locator("#photo input[type=file]").set_input_files(str(examples / "coffee.jpg"))
    page.locator("#mask input[type=file]").set_input_files(str(examples / "coffee_mask.png"))
    page.locator("#photo img").first.wait_for(timeout=30_000)
    page.locator("#mask img").first.wait_for(timeout=30_000)
    page.locator("#run_upload").click()
    page.locator("#result img").first.wait_for(timeout=120_000)


def test_inpaint_offline_in_a_browser_desktop_and_phone(hub_url, browser):
    playwright, chromium = browser
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for label, options in (("desktop", {"viewport": {"width": 1280, "height": 1000}}),
                           ("phone", dict(playwright.devices["Pixel 7"]))):
        context = chromium.new_context(**options)
        page = context.new_page()
        errors = watch_console(page)
        run_inpaint(page, hub_url)
        source = page.locator("#result img").first.get_attribute("src")
        assert source and (".png" in source or source.startswith("data:image/png"))
        natural = page.locator("#result img").first.evaluate("img => [img.naturalWidth, img.naturalHeight]")
        assert natural == [600, 400]  # full resolution of the coffee example
        page.screenshot(path=str(ARTIFACTS / f"inpaint_{label}.png"), full_page=True)
        assert errors == [], errors
        context.close()
