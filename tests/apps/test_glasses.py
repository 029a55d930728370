"""The glasses app through gradio_client (one live server) with the shipped weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from core.pipelines.glasses.layout import eye_band
from tests.support.live import live_client

EXAMPLES = Path(__file__).resolve().parents[2] / "apps" / "glasses" / "examples"
pytestmark = [pytest.mark.real_weights("genegan.eyeglasses64"),
              pytest.mark.real_weights("genegan.glasses_classifier64")]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANHUB_CACHE", str(tmp_path_factory.mktemp("glasses_cache")))
        mp.setenv("GANHUB_DEVICE", "cpu")
        from apps.glasses.app import demo

        with live_client(demo) as c:
            yield c


AUTO = "Auto (add the change to B, paste the output on A)"


def call(client, a: str, b: str, strength: float = 1.0, blend: str = AUTO, passes: int = 2):
    return client.predict(handle_file(str(EXAMPLES / a)), handle_file(str(EXAMPLES / b)), strength, blend, passes,
                          api_name="/swap")


def test_aligned_faces_swap_inside_the_eye_band_only(client):
    b_with, a_without, crops, notes = call(client, "a_glasses.png", "b_face64.png")
    band = eye_band()
    for out, src in ((b_with, "b_face64.png"), (a_without, "a_glasses.png")):
        out, src = np.asarray(Image.open(out).convert("RGB")), np.asarray(Image.open(EXAMPLES / src).convert("RGB"))
        assert out.shape == (64, 64, 3)
        assert (out[~band] == src[~band]).all()  # png output: bit-exact outside the band
        assert np.abs(out[band].astype(int) - src[band]).mean() > 2  # the glasses moved
    # one captioned image: the four aligned crops enlarged x3 with their pixels as they are (A, B, B + A's
    # glasses, A - glasses); aligned 64 px inputs are their own crops
    sheet, enlarged = np.asarray(Image.open(crops).convert("RGB")), lambda x: x.repeat(3, 0).repeat(3, 1)
    assert Image.open(crops).format == "PNG" and sheet.shape == (22 + 192, 4 * 192 + 3 * 8, 3)
    for left, image in ((0, EXAMPLES / "a_glasses.png"), (200, EXAMPLES / "b_face64.png"), (400, b_with),
                        (600, a_without)):
        assert (sheet[22:, left:left + 192] == enlarged(np.asarray(Image.open(image).convert("RGB")))).all()
    assert notes


def test_photos_in_photos_out(client):
    b_with, a_without, _, _ = call(client, "a_photo_glasses.jpg", "b_photo.jpg", 0.8,
                                   "Paste the model's output (paper)", passes=1)
    b = np.asarray(Image.open(EXAMPLES / "b_photo.jpg").convert("RGB"))
    out = np.asarray(Image.open(b_with).convert("RGB"))
    assert out.shape == b.shape
    changed = (out != b).any(-1)
    assert 0 < changed.mean() < 0.1  # only the eye band of the face
    assert Image.open(a_without).size == Image.open(EXAMPLES / "a_photo_glasses.jpg").size


PHOTO = "Photo (A's real frames, inpainted removal)"


def test_photo_mode_changes_only_the_frames_of_real_portraits(client):
    b_with, a_without, crops, notes = call(client, "grace_hopper.jpg", "b_photo.jpg", 1.0, PHOTO)
    for out, src in ((b_with, "b_photo.jpg"), (a_without, "grace_hopper.jpg")):
        out, src = np.asarray(Image.open(out).convert("RGB")), np.asarray(Image.open(EXAMPLES / src).convert("RGB"))
        assert out.shape == src.shape
        assert 0.002 < (out != src).any(-1).mean() < 0.05  # frames only, not the eye band
    # one PNG: the four 64 px crops (enlarged x3) in a row, the two masks over the photos below them
    assert Image.open(crops).format == "PNG" and Image.open(crops).size[1] == (22 + 192) + 8 + (22 + 128)
    assert Image.open(b_with).info["gradio_client"].startswith("client.predict(image_a=handle_file('image_a.png')")
    assert "Classifier" in notes and "after removal" in notes


def test_user_errors_are_clear_and_the_server_keeps_serving(client, tmp_path):
    import skimage.data

    Image.fromarray(skimage.data.coffee()).save(tmp_path / "coffee.png")
    with pytest.raises(AppError, match="No face was found in image B"):
        client.predict(handle_file(str(EXAMPLES / "a_glasses.png")), handle_file(str(tmp_path / "coffee.png")),
                       1.0, AUTO, api_name="/swap")
    with pytest.raises(AppError, match="already seems to wear glasses"):
        call(client, "a_glasses.png", "a_glasses.png")
    assert call(client, "a_glasses.png", "b_face64.png")[0]  # still serving
