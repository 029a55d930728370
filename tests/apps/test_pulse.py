"""The PULSE app through gradio_client (one live server).

The real offline DCGAN is served through ``GANHUB_WEIGHTS_DIR``; ``stylegan2.ffhq1024`` is mapped
by a test manifest first to a repository the local Hub does not have (the missing-weights path),
then to a tiny random rosinality checkpoint on the local Hub (the working path).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.faces import detector_ids

APP_DIR = Path(__file__).resolve().parents[2] / "apps" / "pulse"
TINY_SG2 = dict(size=32, style_dim=16, n_mlp=2, channels={4: 16, 8: 16, 16: 8, 32: 8})
DCGAN = pytest.mark.real_weights("dcgan.faces64")
DETECTOR = pytest.mark.real_weights(*detector_ids())


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from core.cache import MODEL_CACHE
    from tests.support.live import isolated_app_world, live_client, upload_tiny_stylegan2

    root = tmp_path_factory.mktemp("pulse")
    with isolated_app_world(root, keep=("dcgan.faces64", *detector_ids())) as (hub, real, layouts):
        revision = upload_tiny_stylegan2(hub, TINY_SG2)

        def write_manifest(stylegan_repo: str) -> None:
            entry = {"arch": "stylegan2", "config": TINY_SG2, "title": "tiny StyleGAN2", "license": "test",
                     "apps": ["pulse"],
                     "sources": [{"kind": "hf", "repo_id": stylegan_repo, "filename": "g.pt", "revision": revision,
                                  "format": {"type": "torch_pickle", "key": "g_ema"}}]}
            models = {"stylegan2.ffhq1024": entry, **real}
            path = root / "manifest.json"
            path.write_text(json.dumps({"schema_version": 1, "face_layouts": layouts, "models": models}))
            stamp = time.time() + len(stylegan_repo)  # a new mtime: the manifest is re-read
            os.utime(path, (stamp, stamp))

        write_manifest("tests/not-on-the-hub")
        MODEL_CACHE.clear()
        module = importlib.reload(sys.modules["apps.pulse.app"]) if "apps.pulse.app" in sys.modules \
            else importlib.import_module("apps.pulse.app")
        with live_client(module.demo) as client:
            yield module, client, write_manifest
        MODEL_CACHE.clear()

def upsample(client, image, **kwargs):
    from gradio_client import handle_file

    settings = dict(generator="dcgan.faces64", size=16, steps=20, eps=2e-3, samples=2, seed=5, face=0,
                    stylegan2_search="256+1024")
    settings.update(kwargs)
    return client.predict(handle_file(str(image)), **settings, api_name="/upsample")


def test_api_contract_and_the_missing_weights_notice(app):
    module, client, _ = app
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    params = [p["parameter_name"] for p in endpoints["/upsample"]["parameters"]]
    assert params == ["image", "generator", "size", "steps", "eps", "samples", "seed", "face",
                      "stylegan2_search"]
    [fn] = [f for f in module.demo.fns.values() if f.api_name == "upsample"]
    assert (fn.concurrency_id, fn.concurrency_limit) == ("jobs", 4)  # then the lanes: one heavy job per device
    notice = module.weights_notice()
    assert "StyleGAN2 FFHQ 1024 px: weights missing" in notice and "dcgan" not in notice


@DCGAN
def test_tiny_face_gives_hr_faces_their_downscaled_versions_l2_and_seed(app):
    _, client, _ = app
    current, faces, compared, summary, details, seed = upsample(client, APP_DIR / "examples" / "dcgan_face_16.png")
    assert seed == 5 and details["seed"] == 5 and details["steps"] == 20
    assert Image.open(current).size == (64, 64) and Image.open(current).format == "PNG"
    assert len(faces) == 2 and all(Image.open(f["image"]).size == (64, 64) for f in faces)
    restarts = [s["restart"] for s in details["samples"]]
    assert [c["caption"] for c in compared] == ["input 16x16"] + [f"restart {r} downscaled" for r in restarts]
    assert Image.open(compared[0]["image"]).size == (128, 128)  # 16 px shown x8
    l2s = [s["l2"] for s in details["samples"]]
    assert l2s == sorted(l2s) and all(s["l2"] < s["start_l2"] for s in details["samples"])
    assert all(s["success"] == (s["l2"] <= 2e-3) for s in details["samples"])
    assert "used as is" in summary
    again = upsample(client, APP_DIR / "examples" / "dcgan_face_16.png")[4]
    assert [s["l2"] for s in again["samples"]] == l2s, "same seed, same faces"


@DCGAN
@DETECTOR
def test_a_photo_is_aligned_and_failure_is_reported_honestly(app):
    _, client, _ = app
    _, faces, compared, summary, details, _ = upsample(client, APP_DIR / "examples" / "astronaut_photo.jpg", steps=10)
    assert not details["success"]
    assert summary.startswith("**No face within eps.**") and "closest face has L2" in summary
    assert "Found 1 face(s)" in summary and len(faces) == 2, "the closest faces are still shown"
    assert [c["caption"] for c in compared][:2] == ["input 16x16", "aligned face"]


@DCGAN
def test_progress_streams_before_the_result_and_cancel_ends_the_search(app):
    module, client, _ = app
    from gradio_client import handle_file

    job = client.submit(handle_file(str(APP_DIR / "examples" / "dcgan_face_8.png")), "dcgan.faces64", 8, 15, 2e-3,
                        1, 1, 0, "256", api_name="/upsample")
    job.result(timeout=120)
    outputs = job.outputs()
    # the first progress note always streams; later ones at most every PREVIEW_INTERVAL, so a quick
    # search may send none before its result
    assert len(outputs) >= 2 and outputs[0][3].startswith("The input is a 8x8 face") and "Step 5 of 15" in outputs[0][3]
    assert "Step" not in outputs[-1][3] and outputs[-1][5] == 1  # the result, with the seed used
    job = client.submit(handle_file(str(APP_DIR / "examples" / "dcgan_face_8.png")), "dcgan.faces64", 8, 500, 2e-3,
                        4, 1, 0, "256", api_name="/upsample")
    deadline = time.time() + 60
    while not job.outputs() and time.time() < deadline:
        time.sleep(0.05)
    assert job.outputs(), "a first preview arrived"
    job.cancel()
    while len(module.cancels) and time.time() < deadline:
        time.sleep(0.05)
    assert not len(module.cancels), "the search generator was closed"


@DCGAN
def test_the_page_gets_jpeg_previews_and_scripts_the_notes_only(app, monkeypatch):
    from gradio_client import handle_file

    from tests.support.live import page_client

    module, client, _ = app
    monkeypatch.setattr(module, "PREVIEW_INTERVAL", 0.0)  # a preview at each progress event (every 5th step)
    monkeypatch.setattr(module, "SCRIPT_UPDATE_INTERVAL", 0.0)  # and a note for scripts at each one
    args = (handle_file(str(APP_DIR / "examples" / "dcgan_face_16.png")), "dcgan.faces64", 16, 15, 2e-3, 2, 1, 0,
            "256")
    with page_client(client) as page:
        job = page.submit(*args, api_name="/upsample")
        best = job.result(timeout=120)[0]
        previews = [output[0] for output in job.outputs()[:-1]]
        assert len(previews) == 3  # steps 5, 10, 15
        for path in previews:  # the leading face as the search sees it, quick to encode
            assert Image.open(path).format == "JPEG" and Image.open(path).size == (64, 64)
        assert Image.open(best).format == "PNG" and Image.open(best).size == (64, 64)  # the result stays lossless
        assert Image.open(best).info["gradio_client"].startswith(
            "client.predict(image=handle_file('image.png'), generator='dcgan.faces64', size=16, steps=15,")
    job = client.submit(*args, api_name="/upsample")  # a script: every note, no preview file to download
    job.result(timeout=120)
    streamed = job.outputs()[:-1]
    notes = [re.search(r"Step \d+ of 15", output[3])[0] for output in streamed]
    assert notes == [f"Step {n} of 15" for n in (5, 10, 15)]
    assert not any(isinstance(output[0], str) for output in streamed)


@DETECTOR
def test_user_errors_are_clear_and_the_server_keeps_serving(app, tmp_path):
    import skimage.data
    from gradio_client.exceptions import AppError

    _, client, _ = app
    cat = tmp_path / "cat.png"
    Image.fromarray(skimage.data.chelsea()).save(cat)
    with pytest.raises(AppError, match="No face was found"):
        upsample(client, cat)
    wide = tmp_path / "wide.png"
    Image.new("RGB", (30, 60)).save(wide)
    with pytest.raises(AppError, match="not square"):
        upsample(client, wide)
    with pytest.raises(AppError, match="not available here"):
        upsample(client, APP_DIR / "examples" / "dcgan_face_8.png", generator="stylegan2.ffhq1024", size=8)
    with pytest.raises(AppError, match="Upload a face"):
        client.predict(None, "dcgan.faces64", 16, 10, 2e-3, 1, 0, 0, "256", api_name="/upsample")


def test_stylegan2_path_with_tiny_weights(app):
    from gradio_client.exceptions import AppError

    from core.cache import MODEL_CACHE

    _, client, write_manifest = app
    write_manifest("tests/tiny-stylegan2")
    MODEL_CACHE.clear()
    current, faces, _, summary, details, _ = upsample(client, APP_DIR / "examples" / "dcgan_face_8.png",
                                                      generator="stylegan2.ffhq1024", size=8, steps=10)
    assert Image.open(current).size == (32, 32) and len(faces) == 2
    assert details["generator"] == "stylegan2.ffhq1024" and details["steps"] == 10
    with pytest.raises(AppError, match="below 32"):
        upsample(client, APP_DIR / "examples" / "dcgan_face_8.png", generator="stylegan2.ffhq1024", size=32, steps=10)
    assert np.asarray(Image.open(current)).std() > 0
    with pytest.raises(AppError, match="512"):
        upsample(client, APP_DIR / "examples" / "dcgan_face_8.png", generator="stylegan2.ffhq1024", size=8, steps=10,
                 stylegan2_search="512")


def test_the_time_budget_ends_a_long_search_with_the_best_faces(app, monkeypatch):
    module, client, _ = app
    monkeypatch.setenv("GANHUB_JOB_SECONDS", "0.5")
    best, faces, _, summary, details, _ = upsample(client, APP_DIR / "examples" / "dcgan_face_16.png", steps=500,
                                                  samples=1)
    assert details["steps"] < 500 and len(faces) == 1 and best
    assert "at most 0.5 s (GANHUB_JOB_SECONDS): the job was stopped after" in summary
    assert "of 500 steps, and the best result so far is shown" in summary
    assert module.expected_time("dcgan.faces64", 100, 4).startswith("Expected time: about ")


@DCGAN
def test_scripts_get_fewer_updates_than_the_page(app, monkeypatch):
    """Scripts see no previews, so they get the progress notes at SCRIPT_UPDATE_INTERVAL, not the page's pace."""
    from gradio_client import handle_file

    from tests.support.live import page_client

    module, client, _ = app
    monkeypatch.setattr(module, "PREVIEW_INTERVAL", 0.0)
    monkeypatch.setattr(module, "SCRIPT_UPDATE_INTERVAL", 3600.0)
    args = (handle_file(str(APP_DIR / "examples" / "dcgan_face_16.png")), "dcgan.faces64", 16, 15, 2e-3, 1, 1, 0,
            "256")
    with page_client(client) as page:
        job = page.submit(*args, api_name="/upsample")
        job.result(timeout=120)
        assert len(job.outputs()) == 4  # steps 5, 10 and 15, then the result
    job = client.submit(*args, api_name="/upsample")
    job.result(timeout=120)
    streamed = job.outputs()[:-1]
    assert [re.search(r"Step \d+ of 15", output[3])[0] for output in streamed] == ["Step 5 of 15"]  # the first only
