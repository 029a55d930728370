"""Contract every app keeps: importable, light at import, module-level demo, stable unique API names."""

import ast
import importlib
import sys
from pathlib import Path

import gradio as gr
import pytest

from apps import APP_NAMES
from core import ui
from core.weights import load_manifest

APPS_DIR = Path(__file__).resolve().parents[2] / "apps"
ALLOWED_IMPORTS = {"gradio", "core", "numpy", "PIL", "__future__"} | set(sys.stdlib_module_names)


def test_every_app_folder_is_registered():
    folders = sorted(p.parent.name for p in APPS_DIR.glob("*/app.py"))
    assert folders == sorted(APP_NAMES)


@pytest.mark.parametrize("name", APP_NAMES)
def test_app_module_contract(name):
    from core.cache import MODEL_CACHE

    before = set(MODEL_CACHE.keys())
    module = importlib.import_module(f"apps.{name}.app")
    assert isinstance(module.demo, gr.Blocks)
    assert module.demo.delete_cache == ui.DELETE_CACHE  # outputs do not pile up on a long-running server
    assert module.__doc__ and module.TITLE and module.DESCRIPTION
    assert set(module.MODEL_IDS) <= set(load_manifest())
    assert set(MODEL_CACHE.keys()) == before, "importing an app must not load models"


@pytest.mark.parametrize("name", APP_NAMES)
def test_app_imports_only_gradio_core_and_light_libraries(name):
    tree = ast.parse((APPS_DIR / name / "app.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots = {(node.module or "").split(".")[0]}
        else:
            continue
        assert roots <= ALLOWED_IMPORTS, f"apps/{name}/app.py imports {roots - ALLOWED_IMPORTS}"
    source = (APPS_DIR / name / "app.py").read_text()
    assert 'if __name__ == "__main__":' in source
    # Docstrings are the API's and the MCP tools' documentation, not logic: they do not count.
    docstrings = sum(node.end_lineno - node.lineno + 1 for node in ast.walk(tree)
                     if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                     and isinstance(node.value.value, str))
    assert source.count("\n") - docstrings <= 200, "apps stay thin: move logic into core/"


def test_api_names_are_unique_across_the_hub():
    seen = {}
    for name in APP_NAMES:
        demo = importlib.import_module(f"apps.{name}.app").demo
        for endpoint in demo.get_api_info()["named_endpoints"]:
            if endpoint == "/load_example":
                continue
            assert endpoint not in seen, f"{endpoint} is used by {seen[endpoint]} and {name}"
            seen[endpoint] = name


# text2image reads A1111 text; the latent app has two readers (one per tab), tested in test_latent.py
@pytest.mark.parametrize("name", [n for n in APP_NAMES if n not in ("text2image", "latent")])
def test_a_result_png_gives_the_settings_it_was_made_with_back(name, tmp_path):
    """Each app's read_<app>_parameters endpoint fills its settings from the call stored in a result PNG."""
    from PIL import Image

    from core.ui.reproduce import Call, InputFile
    from core.ui import encode_image

    demo = importlib.import_module(f"apps.{name}.app").demo
    endpoints = demo.get_api_info()["named_endpoints"]
    (reader,) = [e for e in endpoints if e.startswith("/read_") and e.endswith("_parameters")]
    reader_fn = next(f for f in demo.fns.values() if f.api_name == reader[1:])
    targets = [f for f in demo.fns.values() if f.api_name in ("inpaint", "translate", "upsample", "swap",
                                                               "sketch_to_photo", "sketch_to_photo_pad")]
    assert targets
    for target in targets:
        parameters = endpoints["/" + target.api_name]["parameters"]
        by_component = {id(c): p["parameter_name"] for c, p in zip(target.inputs, parameters)}
        wanted = [by_component[id(c)] for c in reader_fn.outputs]  # the reader fills the endpoint's own settings
        stored = {p["parameter_name"]: p.get("parameter_default") for p in parameters}
        stored = {k: (InputFile(f"{k}.png") if k not in wanted else v) for k, v in stored.items()}
        path = tmp_path / f"{target.api_name}.png"
        path.write_bytes(encode_image(Call("/" + target.api_name, stored).stamp(Image.new("RGB", (4, 4))), "png"))
        assert list(demo(str(path), api_name=reader[1:])) == [stored[k] for k in wanted], target.api_name
