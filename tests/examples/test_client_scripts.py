"""The gradio_client scripts in examples/ run as documented, against the hub and a standalone app."""

import runpy
import sys

import numpy as np
import pytest
from gradio_client.exceptions import AppError
from PIL import Image

from tests.support.servers import REPO_ROOT, serve_app, serve_hub

EXAMPLES = REPO_ROOT / "examples"


@pytest.fixture(scope="module")
def hub():
    with serve_hub() as url:
        yield url


def run_example(name: str, url: str, monkeypatch) -> dict:
    monkeypatch.setattr(sys, "argv", [f"{name}.py", url])
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="__main__")


def assert_real_image(path, size=None) -> Image.Image:
    image = Image.open(path)
    image.load()
    assert image.mode in ("RGB", "RGBA")
    if size is not None:
        assert image.size == size
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    assert pixels.std() > 5, "blank image"
    return image


def test_season_example(hub, monkeypatch):
    out = run_example("season", f"{hub}/season/", monkeypatch)
    assert_real_image(out["result"], Image.open(REPO_ROOT / "apps/season/examples/rocket.jpg").size)


def test_sketch2photo_example(hub, monkeypatch):
    out = run_example("sketch2photo", f"{hub}/sketch2photo/", monkeypatch)
    assert_real_image(out["sketch"])
    assert len(out["photos"]) == 4
    for item in out["photos"]:
        assert_real_image(item["image"])


def test_inpaint_example(hub, monkeypatch):
    out = run_example("inpaint", f"{hub}/inpaint/", monkeypatch)
    result = assert_real_image(out["result"], (600, 400))
    original = np.asarray(Image.open(REPO_ROOT / "apps/inpaint/examples/coffee.jpg").convert("RGB"))
    changed = (np.asarray(result.convert("RGB")) != original).any(-1)
    assert 0 < changed.mean() < 0.2  # only the spoon's region changes
    assert Image.open(out["mask_used"]).size == (600, 400)
    removed = np.asarray(Image.open(out["removed"]).convert("RGB"))
    removed_hole = np.asarray(Image.open(out["removed_mask"]).convert("L")) > 127
    assert removed_hole[280, 365] and 0 < removed_hole.mean() < 0.2
    assert np.array_equal(removed[~removed_hole], original[~removed_hole])
    assert [item["caption"].split(":")[0] for item in out["gallery"]] == ["OpenCV Telea", "OpenCV Navier-Stokes"]
    assert_real_image(out["extended"], (664, 400))


def test_pulse_example(hub, monkeypatch):
    out = run_example("pulse", f"{hub}/pulse/", monkeypatch)
    assert len(out["faces"]) == 4
    for item in out["faces"]:
        assert_real_image(item["image"], (64, 64))
    assert out["seed"] == 1


def test_glasses_example(hub, monkeypatch):
    out = run_example("glasses", f"{hub}/glasses/", monkeypatch)
    b_size = Image.open(REPO_ROOT / "apps/glasses/examples/b_photo.jpg").size
    assert_real_image(out["b_with_glasses"], b_size)


def test_latent_example(hub, monkeypatch):
    out = run_example("latent", f"{hub}/latent/", monkeypatch)
    assert len(out["samples"]) == 4 and len(out["latents"]) == 4
    assert_real_image(out["strip"])
    assert [frame["caption"][:11] for frame in out["slide"]][2] == "alpha +0.00"
    assert_real_image(out["edited"], Image.open(REPO_ROOT / "apps/latent/examples/photo.jpg").size)


def test_text2image_example_says_what_to_download(hub, monkeypatch):
    with pytest.raises(AppError, match="core.weights fetch diffusers.sd_turbo"):
        run_example("text2image", f"{hub}/text2image/", monkeypatch)


CHECKS = {
    "season": lambda out: assert_real_image(out["result"]),
    "sketch2photo": lambda out: assert_real_image(out["photos"][0]["image"]),
    "inpaint": lambda out: assert_real_image(out["result"], (600, 400)),
    "pulse": lambda out: assert_real_image(out["faces"][0]["image"], (64, 64)),
    "glasses": lambda out: assert_real_image(out["a_without"]),
    "latent": lambda out: assert_real_image(out["edited"]),
}


@pytest.mark.parametrize("name", [*CHECKS, "text2image"])
def test_example_against_the_standalone_app(name, monkeypatch):
    """`python apps/<name>/app.py` in its own process, called by its example script."""
    with serve_app(name) as url:
        if name == "text2image":  # no weights here: a clear message, not a crash
            with pytest.raises(AppError, match="not available here"):
                run_example(name, url + "/", monkeypatch)
            return
        CHECKS[name](run_example(name, url + "/", monkeypatch))
