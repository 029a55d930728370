"""The text2image app through gradio_client, with the tiny random pipeline served by the local Hub.

The test manifest maps ``diffusers.sd_turbo`` to the tiny pipeline and ``diffusers.bk_sdm_tiny`` to a
repository the Hub does not have, so both the working path and the missing-weights path are real.
"""

from __future__ import annotations

import importlib
import json
import sys
import time

import numpy as np
import pytest
from PIL import Image

from tests.support import tiny_diffusers as tiny

TURBO, TINY_SD = "diffusers.sd_turbo", "diffusers.bk_sdm_tiny"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    import torch

    from core.cache import MODEL_CACHE
    from core.pipelines import text_to_image as t2i
    from tests.support.live import live_client
    from tests.support.local_servers import LocalHub, isolate_weights

    root = tmp_path_factory.mktemp("text2image")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest, and the CPU is shared
    with pytest.MonkeyPatch.context() as mp, LocalHub() as hub:
        isolate_weights(mp, root, hub.url)
        mp.setenv("GANHUB_MANIFEST", str(root / "manifest.json"))
        mp.setenv("GRADIO_TEMP_DIR", str(root / "gradio"))
        mp.setenv("GANHUB_T2I_FAST_DECODE", "0")
        mp.setattr(t2i, "PREVIEW_MAX_SHARE", 1.0)  # a preview at every step, however fast the steps
        mp.setenv("GANHUB_CPU_BF16", "0")  # float32: the same numbers on every CPU
        revision = hub.add_files(tiny.TINY_REPO, tiny.tiny_pipeline_files())
        taesd_revision = hub.add_files(tiny.TINY_TAESD_REPO, tiny.tiny_taesd_files())
        models = {TURBO: tiny.manifest_entry(tiny.TINY_REPO, revision),
                  TINY_SD: tiny.manifest_entry("tests/not-on-the-hub", "3" * 40),
                  "diffusers.taesd": tiny.taesd_manifest_entry(tiny.TINY_TAESD_REPO, taesd_revision)}
        (root / "manifest.json").write_text(json.dumps({"schema_version": 1, "models": models}))
        MODEL_CACHE.clear()
        # (Re)build the app under this manifest: its model list and defaults are read when the page is built.
        module = importlib.reload(sys.modules["apps.text2image.app"]) if "apps.text2image.app" in sys.modules \
            else importlib.import_module("apps.text2image.app")
        with live_client(module.demo) as client:
            yield module, client, revision
        MODEL_CACHE.clear()
    torch.set_num_threads(threads)


def run(client, **kwargs):
    settings = dict(model=TURBO, prompt="a red cat", negative_prompt="", steps=2, guidance=5.0, width=64, height=64,
                    seed=42, num_images=1, fast_decode=False)
    settings.update(kwargs)
    return settings, client.predict(**settings, api_name="/generate")


def test_api_names_and_the_missing_model_notice(app):
    module, client, _ = app
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/generate", "/read_parameters"} <= set(endpoints)
    params = [p["parameter_name"] for p in endpoints["/generate"]["parameters"]]
    assert params == ["model", "prompt", "negative_prompt", "steps", "guidance", "width", "height", "seed",
                      "num_images", "fast_decode"]
    [fn] = [f for f in module.demo.fns.values() if f.api_name == "generate"]
    assert (fn.concurrency_id, fn.concurrency_limit) == ("heavy", 1)
    assert module.missing_models() == [TURBO, TINY_SD], "nothing is downloaded before the first run"
    run(client)  # downloads the (tiny) weights through the resolver
    assert module.missing_models() == [TINY_SD]
    assert "python -m core.weights fetch diffusers.bk_sdm_tiny" in module.weights_notice([TINY_SD])


def test_generate_gives_pngs_with_parameters_reproducibly(app):
    from core.pipelines.text_to_image_params import read_parameters

    _, client, revision = app
    settings, (gallery, seed, text) = run(client, seed=42, num_images=2, negative_prompt="blurry, dark")
    assert seed == 42 and len(gallery) == 2
    images = [Image.open(item["image"]) for item in gallery]
    assert all(im.format == "PNG" and im.size == (64, 64) for im in images)
    params = [read_parameters(item["image"]) for item in gallery]
    assert [p["seed"] for p in params] == [42, 43]
    assert params[0]["prompt"] == "a red cat" and params[0]["negative_prompt"] == "blurry, dark"
    assert params[0]["model_id"] == TURBO and params[0]["model_revision"] == revision
    assert text.startswith("a red cat\nNegative prompt: blurry, dark\nSteps: 2") and "seeds 42, 43" in text
    _, (again, _, _) = run(client, seed=42, num_images=2, negative_prompt="blurry, dark")
    for a, b in zip(gallery, again):
        assert np.array_equal(np.asarray(Image.open(a["image"])), np.asarray(Image.open(b["image"])))

    _, (_, random_seed, text) = run(client, seed=-1, prompt="Ünïcødé, 猫 sur un toit")
    assert random_seed >= 0 and f"Seed: {random_seed}," in text


def test_previews_stream_then_final_images(app):
    from tests.support.live import page_client

    _, client, _ = app
    settings = dict(model=TURBO, prompt="a red dog", negative_prompt="", steps=4, guidance=5.0, width=64, height=64,
                    seed=1, num_images=1, fast_decode=True)
    with page_client(client) as page:  # the page: previews as quick JPEGs, then the PNGs with their parameters
        job = page.submit(**settings, api_name="/generate")
        final_gallery, _, text = job.result(timeout=120)
        outputs = job.outputs()
        assert len(outputs) >= 3, "previews are streamed before the final images"
        assert all("preview, step" in (item["caption"] or "") for item in outputs[0][0])
        assert Image.open(outputs[0][0][0]["image"]).format == "JPEG"
        final = Image.open(final_gallery[0]["image"])
        assert final.format == "PNG" and "Steps: 4" in final.info["parameters"]
    assert final_gallery[0]["caption"] == "seed 1" and "Decoder: TAESD" in text
    job = client.submit(**settings, api_name="/generate")  # a script: the notes stream, no preview files
    job.result(timeout=120)
    streamed = job.outputs()[:-1]
    assert len(streamed) >= 2 and all(output[2] and not isinstance(output[0], list) for output in streamed)


def test_read_parameters_restores_the_settings(app):
    from gradio_client import handle_file

    _, client, _ = app
    _, (gallery, _, _) = run(client, prompt="a lighthouse, oil", negative_prompt="fog", steps=3, guidance=6.5,
                             width=72, height=96, seed=777)
    restored = client.predict(handle_file(gallery[0]["image"]), api_name="/read_parameters")
    assert list(restored) == [TURBO, "a lighthouse, oil", "fog", 3, 6.5, 72, 96, 777]


def test_user_errors_are_clear_and_the_server_keeps_serving(app):
    from gradio_client.exceptions import AppError

    _, client, _ = app
    for kwargs, message in [(dict(prompt="   "), "prompt is empty"), (dict(width=100), "multiple of 8"),
                            (dict(model=TINY_SD), "not available here")]:
        with pytest.raises(AppError, match=message):
            run(client, **kwargs)
    assert run(client)[1][0], "still serving"


def test_cancelling_the_event_stops_the_pipeline(app):
    from core.pipelines.text_to_image_loading import load_pipeline

    module, client, _ = app
    pipe = load_pipeline(TURBO)
    calls = []

    def slow_step(*args):
        calls.append(1)
        time.sleep(0.05)

    hook = pipe.unet.register_forward_hook(slow_step)
    try:
        settings = dict(model=TURBO, prompt="a red cat", negative_prompt="", steps=50, guidance=5.0, width=64,
                        height=64, seed=3, num_images=1, fast_decode=False)
        job = client.submit(**settings, api_name="/generate")
        deadline = time.time() + 60
        while not job.outputs() and not job.done() and time.time() < deadline:
            time.sleep(0.02)
        assert job.outputs(), "a first preview arrived"
        job.cancel()
        while len(module.cancels) and time.time() < deadline:
            time.sleep(0.02)
        assert not len(module.cancels), "the generator was closed and its run ended"
        done = len(calls)
        time.sleep(0.3)
        assert len(calls) == done < 25, f"the pipeline stopped early ({done} of 51 UNet calls)"
    finally:
        hook.remove()
