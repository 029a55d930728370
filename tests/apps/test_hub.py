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


@pytest.fixture(scope="module")
def hub_with_a_broken_app(tmp_path_factory):
    """An in-process hub serving the season app next to an app whose module raises on import."""
    from tests.support.live import live_hub

    root = tmp_path_factory.mktemp("broken")
    (root / "hub_broken_app").mkdir()
    (root / "hub_broken_app" / "__init__.py").write_text("")
    (root / "hub_broken_app" / "app.py").write_text("import numpy\nraise ImportError('deliberately broken app')\n")
    sys.path.insert(0, str(root))
    try:
        with live_hub({"season": "apps.season.app", "broken": "hub_broken_app.app"}) as url:
            yield url
    finally:
        sys.path.remove(str(root))


def test_a_broken_app_is_shown_as_failed_and_the_others_are_served(hub_with_a_broken_app):
    import json

    url = hub_with_a_broken_app
    page = urllib.request.urlopen(url + "/").read().decode()
    assert "failed to load" in page and "ImportError: deliberately broken app" in page
    assert 'href="season/"' in page and "season/gradio_api/mcp/" in page
    report = json.loads(urllib.request.urlopen(url + "/health").read())
    assert report["status"] == "degraded"
    assert report["apps"]["broken"] == {"status": "failed", "reason": "ImportError: deliberately broken app"}
    assert urllib.request.urlopen(url + "/season/config").status == 200


def test_health_reports_versions_device_weights_and_queue(hub_with_a_broken_app):
    import json

    import core
    from core.weights import availability

    report = json.loads(urllib.request.urlopen(hub_with_a_broken_app + "/health").read())
    assert report["version"] == core.__version__ and report["gradio"] == "6.31.0"
    assert report["device"] == "cpu" and report["dtype_policy"]["default"] == "float32"
    season = report["apps"]["season"]
    assert set(season["models"]) == {"cyclegan.vintage", "cyclegan.summer2winter", "cyclegan.winter2summer"}
    for model_id, info in season["models"].items():
        assert info["weights_present"] == availability(model_id)[0]
    missing = [m for m, info in season["models"].items() if not info["weights_present"]]
    assert season["status"] == ("weights missing" if missing else "ready")
    if missing:
        assert season["fetch"] == "python -m core.weights fetch " + " ".join(missing)
    assert season["queue"] == {"waiting": 0, "running": 0, "max_size": 16}
    # each mounted app answers for itself too
    own = json.loads(urllib.request.urlopen(hub_with_a_broken_app + "/season/health").read())
    assert list(own["apps"]) == ["season"] and own["apps"]["season"]["models"] == season["models"]


def test_status_page_says_which_weights_are_missing_and_how_to_fetch_them(isolated_cache):
    import types

    import gradio as gr

    from apps.hub import landing_page

    app = types.SimpleNamespace(TITLE="Season", DESCRIPTION="**bold**", MODEL_IDS=["cyclegan.summer2winter"],
                                demo=gr.Blocks())
    page = landing_page({"season": app}, {"broken": "RuntimeError: <boom>"})
    assert "weights missing" in page and "<code>python -m core.weights fetch cyclegan.summer2winter</code>" in page
    assert "RuntimeError: &lt;boom&gt;" in page  # the reason is shown, escaped


def test_the_hub_starts_both_model_workers_as_it_starts_serving():
    import json

    from tests.support.servers import serve_hub

    with serve_hub(env={"GANHUB_MODEL_WORKER": "process"}) as url:
        deadline, workers = time.time() + 120, {}
        while time.time() < deadline and not {"cpu", "cpu:light"} <= set(workers):
            time.sleep(0.5)
            with urllib.request.urlopen(url + "/health", timeout=10) as response:
                workers = json.load(response)["model_worker"]["workers"]
        assert {"cpu", "cpu:light"} <= set(workers), workers  # before any request asked for one
        assert all(w["alive"] for w in workers.values())
