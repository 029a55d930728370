"""Shared fixtures. Tests never reach the network: Hub and PyPI traffic goes to local servers."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SPECS_DIR = REPO_ROOT / "tests" / "specs"
sys.path.insert(0, str(REPO_ROOT))

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# Handlers run their model work in this process, where tests patch models and pipelines; the tests of
# core.model_worker and the live worker test of tests/apps turn the worker process on themselves.
os.environ.setdefault("GANHUB_MODEL_WORKER", "inline")


def pytest_configure(config):
    config.addinivalue_line("markers", "real_weights(model_id): needs the real weights of model_id on this machine")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


def pytest_collection_modifyitems(config, items):
    from core.weights import availability

    seen = {}
    for item in items:
        for marker in item.iter_markers("real_weights"):
            for model_id in marker.args:
                if model_id not in seen:
                    seen[model_id] = availability(model_id)[0]
                if not seen[model_id]:
                    item.add_marker(pytest.mark.skip(
                        reason=f"real weights of {model_id} are not on this machine "
                               f"(run `python -m core.weights fetch {model_id}`)"))


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """Empty HF and converted caches, no override folder."""
    from tests.support.local_servers import isolate_weights

    isolate_weights(monkeypatch, tmp_path)
    return tmp_path


@pytest.fixture
def local_hub(isolated_cache, monkeypatch):
    from tests.support.local_servers import LocalHub

    with LocalHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        yield hub


@pytest.fixture
def local_pypi(isolated_cache, monkeypatch):
    from tests.support.local_servers import LocalPyPI

    with LocalPyPI() as index:
        monkeypatch.setenv("GANHUB_PYPI_INDEX", index.index_url)
        yield index


@pytest.fixture
def write_manifest(tmp_path, monkeypatch):
    """Write a manifest with the given models and point the resolver at it."""
    import json

    def write(models: dict) -> Path:
        path = tmp_path / "weights_manifest.json"
        path.write_text(json.dumps({"schema_version": 1, "models": models}))
        monkeypatch.setenv("GANHUB_MANIFEST", str(path))
        return path

    return write
