"""The latent lab through gradio_client (one live server).

The real offline DCGAN, the shipped encoder and classifier serve the DCGAN tests;
``stylegan2.ffhq1024`` is mapped by a test manifest to a tiny random rosinality checkpoint
(64 px, so it has coarse, middle and fine layers) on the local Hub.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from core.faces import detector_ids
from core.pipelines.latent.inversion import face_ellipse
from core.ui.reproduce import Call, InputFile, parse_call, read_call

EXAMPLES = Path(__file__).resolve().parents[2] / "apps" / "latent" / "examples"
TINY_SG2 = dict(size=64, style_dim=16, n_mlp=2, channels={4: 16, 8: 16, 16: 8, 32: 8, 64: 8})
DCGAN = pytest.mark.real_weights("dcgan.faces64")
DETECTOR = pytest.mark.real_weights(*detector_ids())
REAL = ("dcgan.faces64", "latent.encoder_dcgan64", "genegan.glasses_classifier64", *detector_ids())


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from core.cache import MODEL_CACHE
    from tests.support.live import isolated_app_world, live_client, upload_tiny_stylegan2

    root = tmp_path_factory.mktemp("latent")
    overrides = ("dcgan.faces64", *detector_ids())  # the shipped encoder and classifier load from the repo
    with isolated_app_world(root, REAL, overrides, GANHUB_DEVICE="cpu") as (hub, real, layouts):
        revision = upload_tiny_stylegan2(hub, TINY_SG2)
        tiny = {"arch": "stylegan2", "config": TINY_SG2, "title": "tiny StyleGAN2", "license": "test",
                "apps": ["latent"], "roles": {"latent": "generator"},
                "sources": [{"kind": "hf", "repo_id": "tests/tiny-stylegan2", "filename": "g.pt", "revision": revision,
                             "format": {"type": "torch_pickle", "key": "g_ema"}}]}
        (root / "manifest.json").write_text(json.dumps({"schema_version": 1, "face_layouts": layouts,
                                                        "models": {**real, "stylegan2.ffhq1024": tiny}}))
        MODEL_CACHE.clear()
        module = importlib.reload(sys.modules["apps.latent.app"]) if "apps.latent.app" in sys.modules \
            else importlib.import_module("apps.latent.app")
        with live_client(module.demo) as c:
            yield c
        MODEL_CACHE.clear()

def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(np.int16)


def test_api_names_and_parameters(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    params = {name: [p["parameter_name"] for p in endpoints[name]["parameters"]]
              for name in ("/sample", "/interpolate", "/direction", "/mix", "/invert", "/edit")}
    assert params["/sample"] == ["generator", "seed", "count", "psi"]
    assert params["/interpolate"] == ["generator", "seed_a", "file_a", "seed_b", "file_b", "space", "method",
                                      "frames", "psi"]
    assert params["/edit"] == ["photo", "generator", "latent_file", "method", "attribute", "alpha", "blend", "steps"]


@DCGAN
def test_samples_have_seeds_and_latents_that_walk_from_where_they_were(client):
    gallery, latents, notes = client.predict("dcgan.faces64", 10, 3, 0.7, api_name="/sample")
    assert [g["caption"] for g in gallery] == ["seed 10", "seed 11", "seed 12"] and notes.startswith("Seeds 10-12.\n")
    assert [Path(p).name for p in latents] == [f"dcgan.faces64_seed{s}.safetensors" for s in (10, 11, 12)]
    animation, strip, table, details = client.predict("dcgan.faces64", 0, handle_file(latents[0]), 12, None, "z",
                                                      "slerp", 5, 0.7, api_name="/interpolate")
    frames = pixels(strip)
    assert frames.shape == (96, 5 * 96, 3)
    first, last = pixels(gallery[0]["image"]), pixels(gallery[2]["image"])
    # the strip shows 64 px frames enlarged to 96 px: compare at 64 px
    shrink = lambda a: np.asarray(Image.fromarray(a.astype(np.uint8)).resize((64, 64), Image.Resampling.NEAREST))
    assert np.abs(shrink(frames[:, :96]).astype(int) - first).mean() < 1  # the uploaded latent is sample 10
    assert np.abs(shrink(frames[:, -96:]).astype(int) - last).mean() < 1  # seed 12
    with Image.open(animation) as image:
        assert image.format == "WEBP" and image.n_frames == 5
    assert set(details["smoothness"]) == {"lerp", "slerp"} and "| slerp (shown) |" in table
    assert details["from"].endswith("(z)") and details["to"] == "seed 12"


@DCGAN
@DETECTOR
def test_direction_slide_is_centred_on_the_face_and_measured(client):
    gallery, notes = client.predict("dcgan.faces64", 3, None, "eyeglasses", 2.0, 5, "z", 0.7, api_name="/direction")
    captions = [g["caption"] for g in gallery]
    assert captions[0].startswith("alpha -2.00: P(glasses)") and captions[2].startswith("alpha +0.00")
    [sample], _, _ = client.predict("dcgan.faces64", 3, 1, 0.7, api_name="/sample")
    assert np.array_equal(pixels(gallery[2]["image"]), pixels(sample["image"]))  # alpha 0 is face A itself
    measured = [(float(c.split()[1].rstrip(":")), c.rsplit(" ", 1)[1]) for c in captions]
    below = [float(p) for a, p in measured if a < 0 and p != "face"]  # "no face" when the detector misses
    above = [float(p) for a, p in measured if a > 0 and p != "face"]
    assert below and above and max(above) > 0.5 > min(below)
    assert "over 3000 samples" in notes


@DCGAN
@DETECTOR
def test_invert_then_edit_changes_only_the_face(client, tmp_path):
    aligned, recon, latent, notes = client.predict(handle_file(str(EXAMPLES / "face64.png")), "dcgan.faces64",
                                                   "encoder", 200, api_name="/invert")
    assert notes.startswith("encoder: mean pixel error") and Path(latent).suffix == ".safetensors"
    assert np.array_equal(pixels(aligned), pixels(EXAMPLES / "face64.png"))  # 64 px: used as it is
    edited, steps, edit_notes = client.predict(handle_file(str(EXAMPLES / "face64.png")), "dcgan.faces64",
                                               handle_file(latent), "encoder", "eyeglasses", 2.0, "residual", 200,
                                               api_name="/edit")
    out, original = pixels(edited), pixels(EXAMPLES / "face64.png")
    assert out.shape == original.shape and np.abs(out - original).mean() > 1
    assert (out[face_ellipse(64) == 0] == original[face_ellipse(64) == 0]).all()
    assert len(steps) == 4 and "eyeglasses by alpha +2" in edit_notes
    photo, _, _ = client.predict(handle_file(str(EXAMPLES / "photo.jpg")), "dcgan.faces64", None, "hybrid",
                                 "yaw", 1.0, "direct", 10, api_name="/edit")
    assert Image.open(photo).size == Image.open(EXAMPLES / "photo.jpg").size


@DCGAN
@DETECTOR
def test_user_errors_are_clear_and_the_server_keeps_serving(client, tmp_path):
    import skimage.data

    bad = tmp_path / "latent.npy"
    np.save(bad, np.zeros(7, np.float32))
    with pytest.raises(AppError, match=r"shape \[7\]; a z latent of this generator is \[100\]"):
        client.predict("dcgan.faces64", 0, handle_file(str(bad)), 1, None, "z", "slerp", 4, 0.7, api_name="/interpolate")
    with pytest.raises(AppError, match="Style mixing needs StyleGAN2"):
        client.predict("dcgan.faces64", 0, None, 1, None, "coarse", 0.7, api_name="/mix")
    with pytest.raises(AppError, match="latent space"):
        client.predict("dcgan.faces64", 0, None, 1, None, "w", "slerp", 4, 0.7, api_name="/interpolate")
    cat = tmp_path / "cat.png"
    Image.fromarray(skimage.data.chelsea()).save(cat)
    with pytest.raises(AppError, match="No face was found"):
        client.predict(handle_file(str(cat)), "dcgan.faces64", "encoder", 10, api_name="/invert")
    with pytest.raises(AppError, match="Upload a photo"):
        client.predict(None, "dcgan.faces64", "encoder", 10, api_name="/invert")
    with pytest.raises(AppError, match="Frames must be between 2 and 60"):
        client.predict("dcgan.faces64", 0, None, 1, None, "z", "slerp", 500, 0.7, api_name="/interpolate")
    assert client.predict("dcgan.faces64", 0, 1, 0.7, api_name="/sample")[2].startswith("Seeds 0-0.")


def test_stylegan2_path_with_tiny_weights(client):
    gallery, _, notes = client.predict("stylegan2.ffhq1024", 0, 3, 0.0, api_name="/sample")
    assert "truncation psi 0" in notes
    images = [pixels(g["image"]) for g in gallery]
    assert images[0].shape == (64, 64, 3) and all(np.array_equal(images[0], i) for i in images)  # psi 0: w_avg
    _, strip, table, details = client.predict("stylegan2.ffhq1024", 0, None, 1, None, "w", "lerp", 4, 0.7,
                                              api_name="/interpolate")
    assert "in w, 4 frames" in table and pixels(strip).shape == (96, 4 * 96, 3)
    mixed, mix_notes = client.predict("stylegan2.ffhq1024", 0, None, 1, None, "fine", 0.7, api_name="/mix")
    assert [m["caption"] for m in mixed] == ["A: seed 0", "B: seed 1", "A with B's fine layers"]
    assert mix_notes.startswith("W+ layers 8-9 of A were replaced by B's.\n")
    a, b, ab = (pixels(m["image"]) for m in mixed)
    assert not np.array_equal(ab, a) and not np.array_equal(ab, b)
    with pytest.raises(AppError, match="Only the DCGAN has an encoder"):
        client.predict(handle_file(str(EXAMPLES / "face64.png")), "stylegan2.ffhq1024", "encoder", 10,
                       api_name="/invert")


def reproducing_call(notes: str) -> Call:
    """The gradio_client call the notes end with."""
    assert notes.endswith("\n```"), notes[-200:]
    return parse_call(notes.rsplit("```python\n", 1)[1].removesuffix("\n```").splitlines()[-1])


def with_files(call: Call, paths: dict) -> dict:
    """The call's arguments with each file placeholder replaced by the real file."""
    return {k: handle_file(str(paths[k])) if isinstance(v, InputFile) else v for k, v in call.arguments.items()}


@DCGAN
def test_sample_and_walk_notes_end_with_the_call_that_reproduces_them_and_their_pngs_carry_it(client):
    gallery, latents, notes = client.predict("dcgan.faces64", 20, 2, 0.7, api_name="/sample")
    call = reproducing_call(notes)
    assert call == Call("/sample", {"generator": "dcgan.faces64", "seed": 20, "count": 2, "psi": 0.7})
    again, _, _ = client.predict(**call.arguments, api_name=call.api_name)
    assert all(np.array_equal(pixels(a["image"]), pixels(b["image"])) for a, b in zip(gallery, again))
    assert read_call(gallery[1]["image"]) == call
    settings = client.predict(handle_file(gallery[1]["image"]), api_name="/read_latent_parameters")
    assert list(settings[:4]) == ["dcgan.faces64", 20, 2, 0.7]  # generator, first seed, samples, psi
    _, strip, table, _ = client.predict("dcgan.faces64", 0, handle_file(latents[1]), 5, None, "z", "lerp", 4, 0.7,
                                        api_name="/interpolate")
    walk = reproducing_call(table)
    assert walk.arguments["file_a"] == InputFile("file_a.safetensors") and walk.arguments["seed_b"] == 5
    _, strip_again, _, _ = client.predict(**with_files(walk, {"file_a": latents[1]}), api_name="/interpolate")
    assert np.array_equal(pixels(strip), pixels(strip_again)) and read_call(strip) == walk
    with pytest.raises(AppError, match="made by `/interpolate`"):
        client.predict(handle_file(strip), api_name="/read_latent_edit_parameters")


@DCGAN
@DETECTOR
def test_invert_and_edit_notes_end_with_the_call_that_reproduces_them(client):
    face = EXAMPLES / "face64.png"
    _, recon, latent, notes = client.predict(handle_file(str(face)), "dcgan.faces64", "encoder", 20, api_name="/invert")
    call = reproducing_call(notes)
    assert call == Call("/invert", {"photo": InputFile("photo.png"), "generator": "dcgan.faces64",
                                    "method": "encoder", "steps": 20})
    _, recon_again, _, _ = client.predict(**with_files(call, {"photo": face}), api_name=call.api_name)
    assert np.array_equal(pixels(recon), pixels(recon_again)) and read_call(recon) == call
    edited, _, edit_notes = client.predict(handle_file(str(face)), "dcgan.faces64", handle_file(latent), "encoder",
                                           "yaw", -1.5, "direct", 20, api_name="/edit")
    edit = reproducing_call(edit_notes)
    assert edit.arguments["latent_file"] == InputFile("latent_file.safetensors") and edit.arguments["alpha"] == -1.5
    again, _, _ = client.predict(**with_files(edit, {"photo": face, "latent_file": latent}), api_name="/edit")
    assert np.array_equal(pixels(edited), pixels(again)) and read_call(edited) == edit
    settings = client.predict(handle_file(edited), api_name="/read_latent_edit_parameters")
    assert list(settings) == ["dcgan.faces64", "encoder", 20, "yaw", -1.5, "direct"]
