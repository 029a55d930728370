"""``GET /health`` and the status page's data: ``core.ui.health``."""

import types

import gradio as gr

import core
from core.ui import health


def _app(model_ids):
    return types.SimpleNamespace(TITLE="Season", MODEL_IDS=model_ids, demo=gr.Blocks())


def test_app_status_names_missing_weights_the_command_and_each_models_precision(isolated_cache, monkeypatch):
    override = isolated_cache / "override"
    override.mkdir()
    (override / "cyclegan.vintage.safetensors").write_bytes(b"")
    monkeypatch.setenv("GANHUB_WEIGHTS_DIR", str(override))
    monkeypatch.setenv("GANHUB_DEVICE", "cpu")
    monkeypatch.setenv("GANHUB_CPU_BF16", "1")  # manifest: cyclegan runs under bfloat16 autocast on CPU

    status = health.app_status(_app(["cyclegan.vintage", "cyclegan.summer2winter", "dcgan.faces64"]))
    assert status["status"] == health.WEIGHTS_MISSING and status["title"] == "Season"
    assert status["fetch"].startswith("python -m core.weights fetch cyclegan.summer2winter")
    assert status["models"]["cyclegan.vintage"] == {"weights_present": True, "precision": "bfloat16 autocast"}
    assert status["models"]["cyclegan.summer2winter"]["weights_present"] is False
    assert status["models"]["dcgan.faces64"]["precision"] == "float32"  # no cpu_autocast in its manifest entry
    assert status["queue"] == {"waiting": 0, "running": 0, "max_size": None}  # not queued yet

    monkeypatch.setenv("GANHUB_CPU_BF16", "0")
    assert health.app_status(_app(["cyclegan.vintage"]))["models"]["cyclegan.vintage"]["precision"] == "float32"


def test_an_app_with_every_weight_is_ready_and_a_failed_import_carries_its_reason(isolated_cache, monkeypatch):
    override = isolated_cache / "override"
    override.mkdir()
    (override / "cyclegan.vintage.safetensors").write_bytes(b"")
    monkeypatch.setenv("GANHUB_WEIGHTS_DIR", str(override))
    ready = health.app_status(_app(["cyclegan.vintage"]))
    assert ready["status"] == health.READY and "fetch" not in ready
    assert health.app_status(error="ImportError: no module x") == {"status": health.FAILED,
                                                                   "reason": "ImportError: no module x"}


def test_report_is_degraded_when_an_app_failed(monkeypatch):
    monkeypatch.setenv("GANHUB_DEVICE", "cpu")
    report = health.report({"a": {"status": health.READY}, "b": {"status": health.FAILED, "reason": "x"}})
    assert report["status"] == "degraded" and report["version"] == core.__version__
    assert report["device"] == "cpu" and report["dtype_policy"]["default"] == "float32"
    assert report["gradio"] == gr.__version__ and list(report["apps"]) == ["a", "b"]
    assert health.report({"a": {"status": health.WEIGHTS_MISSING}})["status"] == "ok"  # missing weights still serve


def test_only_an_apps_own_demo_gets_a_health_route():
    assert health.app_kwargs(gr.Blocks()) == {}
    import apps.season.app as season

    (route,) = health.app_kwargs(season.demo)["routes"]
    assert route.path == "/health" and list(route.endpoint()["apps"]) == ["season"]
