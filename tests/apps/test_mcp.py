"""Every app as MCP tools: the real ``mcp`` client over streamable HTTP against a live app and the hub.

Tool names and argument schemas come from the API names and the handlers' docstrings; images go in
as base64 data URLs (what an agent holding a photo sends) and come back as base64 image content.
"""

from __future__ import annotations

import base64
import importlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from apps import APP_NAMES
from tests.support.live import live_client, live_hub, mcp_session

EXAMPLES = Path(__file__).resolve().parents[2] / "apps" / "inpaint" / "examples"


def data_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, "png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="module")
def astronaut():
    from core.images import load_image

    photo = load_image(EXAMPLES / "astronaut.jpg")
    hole = np.asarray(Image.open(EXAMPLES / "astronaut_mask.png").convert("L")) > 127
    assert photo.size == hole.shape[::-1] and 0 < hole.mean() < 0.5
    return photo, hole


@pytest.fixture(scope="module")
def app_url():
    from apps.inpaint.app import demo

    with live_client(demo) as client:
        yield client.src.rstrip("/")


@pytest.fixture(scope="module")
def hub_url(tmp_path_factory):
    """The hub with the inpainting and PULSE apps, plus an app whose module raises on import."""
    import sys

    package = tmp_path_factory.mktemp("broken_apps") / "mcp_broken_app"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "app.py").write_text('raise RuntimeError("deliberately broken for the test")\n')
    sys.path.insert(0, str(package.parent))
    try:
        with live_hub({"inpaint": "apps.inpaint.app", "pulse": "apps.pulse.app",
                       "broken": "mcp_broken_app.app"}) as url:
            yield url
    finally:
        sys.path.remove(str(package.parent))


# Each app's main tools, whose every argument the description explains (endpoints added later by other
# work, e.g. inpaint's select_mask, still lack an Args section: see the lead's notes).
DOCUMENTED = {"inpaint": {"inpaint", "read_inpaint_parameters"}, "sketch2photo": {"sketch_to_photo",
              "sketch_to_photo_pad", "read_sketch_parameters"}, "season": {"translate", "read_season_parameters"},
              "pulse": {"upsample", "read_pulse_parameters"}, "glasses": {"swap", "read_glasses_parameters"},
              "text2image": {"generate", "read_parameters"},
              "latent": {"sample", "interpolate", "direction", "mix", "invert", "edit"}}


def test_every_public_endpoint_is_a_tool_named_after_its_api_name_and_main_tools_describe_every_argument():
    from gradio.mcp import GradioMCPServer

    for name in APP_NAMES:
        demo = importlib.import_module(f"apps.{name}.app").demo
        server = GradioMCPServer(demo)
        endpoints = {e.lstrip("/") for e in demo.get_api_info()["named_endpoints"]}
        assert set(server.tool_to_endpoint) == endpoints, name
        assert DOCUMENTED.get(name, set()) <= endpoints, name
        for tool, endpoint in server.tool_to_endpoint.items():
            if tool not in DOCUMENTED.get(name, set()):
                continue
            description, arguments = server.get_fn_description(server.get_block_fn_from_endpoint_name(endpoint), tool)
            assert len(description) > 40, tool
            schema, _ = server.get_input_schema(tool, arguments)
            undocumented = [a for a, spec in schema["properties"].items() if not spec.get("description")]
            assert not undocumented, f"{name}: {tool} does not describe {undocumented}"


def _list_tools(url):
    async def work(session):
        return {tool.name: tool for tool in (await session.list_tools()).tools}

    return mcp_session(url, work)


def _call(url, name, arguments, progress=None):
    async def work(session):
        return await session.call_tool(name, arguments, progress_callback=progress)

    return mcp_session(url, work)


def _check_tools(tools):
    assert {"inpaint", "inpaint_editor", "read_inpaint_parameters", "remove_object"} <= set(tools)
    schema = tools["inpaint"].inputSchema
    assert list(schema["properties"]) == ["image", "mask", "method", "dilation", "strategy", "working_size", "margin"]
    assert schema["required"] == ["image", "mask"]
    assert schema["properties"]["image"]["type"] == schema["properties"]["mask"]["type"] == "string"
    assert "url" in schema["properties"]["mask"]["format"]
    assert "white" in schema["properties"]["mask"]["description"]
    assert schema["properties"]["method"]["enum"] == ["auto", "migan", "lama", "telea", "ns"]
    assert schema["properties"]["dilation"]["type"] == "number"
    assert "Mask dilation" in schema["properties"]["dilation"]["description"]
    assert "fill a hole" in tools["inpaint"].description


def _check_telea_result(result, astronaut):
    photo, hole = astronaut
    assert not result.isError, result.content
    images = [c for c in result.content if c.type == "image"]
    texts = "\n".join(c.text for c in result.content if c.type == "text")
    filled = Image.open(io.BytesIO(base64.b64decode(images[0].data)))
    assert images[0].mimeType == "image/png" and filled.size == photo.size
    filled, original = np.asarray(filled.convert("RGB")), np.asarray(photo)
    assert np.array_equal(filled[~hole], original[~hole])  # every pixel outside the mask is the input's
    assert np.abs(filled[hole].astype(int) - original[hole]).mean() > 5  # the astronaut's flag is gone
    assert "OpenCV Telea" in texts
    assert "method='telea'" in texts and "api_name='/inpaint'" in texts  # the call that reproduces it


def _check_user_error(url, astronaut):
    photo, hole = astronaut
    everything = Image.new("L", photo.size, 255)
    result = _call(url, "inpaint", {"image": data_url(photo), "mask": data_url(everything), "method": "telea"})
    assert result.isError
    assert "The mask covers the whole image" in result.content[0].text


def test_standalone_app_answers_health(app_url):
    import json
    import urllib.request

    report = json.loads(urllib.request.urlopen(app_url + "/health").read())
    assert list(report["apps"]) == ["inpaint"] and report["apps"]["inpaint"]["title"] == "Inpainting"
    from apps.inpaint.app import MODEL_IDS

    assert set(report["apps"]["inpaint"]["models"]) == set(MODEL_IDS)


def test_app_lists_its_tools_with_argument_schemas(app_url):
    _check_tools(_list_tools(app_url + "/gradio_api/mcp/"))


def test_app_inpaints_a_real_photo_with_telea_over_mcp(app_url, astronaut):
    photo, hole = astronaut
    result = _call(app_url + "/gradio_api/mcp/", "inpaint", {
        "image": data_url(photo), "mask": data_url(Image.fromarray(hole)), "method": "telea", "dilation": 0})
    _check_telea_result(result, astronaut)


def test_app_user_error_is_an_mcp_error_with_the_message(app_url, astronaut):
    _check_user_error(app_url + "/gradio_api/mcp/", astronaut)


def test_hub_mounted_app_lists_and_runs_its_tools(hub_url, astronaut):
    url = hub_url + "/inpaint/gradio_api/mcp/"
    _check_tools(_list_tools(url))
    photo, hole = astronaut
    result = _call(url, "inpaint", {"image": data_url(photo), "mask": data_url(Image.fromarray(hole)),
                                    "method": "telea", "dilation": 0})
    _check_telea_result(result, astronaut)
    _check_user_error(url, astronaut)


@pytest.mark.real_weights("dcgan.faces64")
def test_long_jobs_report_progress_over_mcp(hub_url):
    face = Image.open(Path(__file__).resolve().parents[2] / "apps" / "pulse" / "examples" / "dcgan_face_16.png")
    messages = []

    async def on_progress(progress, total, message):
        messages.append(message)

    result = _call(hub_url + "/pulse/gradio_api/mcp/", "upsample", {
        "image": data_url(face), "size": 16, "steps": 20, "samples": 1, "seed": 7}, progress=on_progress)
    assert not result.isError, result.content
    steps = [m for m in messages if m and m.startswith("Progress Searching: Step ") and m.endswith(" of 20")]
    assert steps, messages  # gr.Progress((step, steps), desc="Searching") forwarded as MCP progress
    texts = "\n".join(c.text for c in result.content if c.type == "text")
    assert "seed=7" in texts and "api_name='/upsample'" in texts
