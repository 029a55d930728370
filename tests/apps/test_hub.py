"""The one-process hub, started the way a user starts it."""

import os
import subprocess
import sys
import time
import urllib.request

import pytest

from apps import APP_NAMES
from tests.support.live import free_port

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def hub_url():
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    process = subprocess.Popen([sys.executable, "-m", "apps.hub", "--port", str(port)], cwd=REPO_ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/", timeout=2)
            break
        except OSError:
            if process.poll() is not None:
                pytest.fail("the hub exited:\n" + process.stdout.read().decode(errors="replace"))
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("the hub did not answer within 90 s")
    yield url
    process.terminate()
    process.wait(10)


def test_landing_page_lists_every_app(hub_url):
    page = urllib.request.urlopen(hub_url + "/").read().decode()
    for name in APP_NAMES:
        assert f'href="{name}/"' in page
    assert "licence" in page.lower() or "license" in page.lower() or "MIT" in page


@pytest.mark.parametrize("name", APP_NAMES)
def test_each_app_is_served(hub_url, name):
    response = urllib.request.urlopen(f"{hub_url}/{name}/")
    assert response.status == 200
    config = urllib.request.urlopen(f"{hub_url}/{name}/config").read().decode()
    assert '"components"' in config


def test_descriptions_are_rendered_not_shown_as_markdown(hub_url):
    page = urllib.request.urlopen(hub_url + "/").read().decode()
    assert "**" not in page and "<b>" in page
