"""Photo pipeline of the glasses app: alignment, swap, paste-back that leaves everything else untouched."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from core import glasses
from core.models.genegan import GeneGAN
from core.models.glasses_classifier import GlassesClassifier
from core.synthetic_glasses import GLASSES_TEMPLATE, eye_band

EXAMPLES = Path(__file__).resolve().parents[2] / "apps" / "glasses" / "examples"


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    model = GeneGAN(ch=(8, 16, 32)).eval()
    with torch.no_grad():  # large random weights: the swap visibly changes the output
        for p in model.parameters():
            if p.ndim == 4:
                p.normal_(0, 0.3)
    classifier = GlassesClassifier(width=4).eval()
    with torch.no_grad():
        classifier.head.weight.zero_()
        classifier.head.bias.fill_(-5.0)  # "no glasses" for every input
    return model, classifier


def photo(name: str) -> Image.Image:
    return Image.open(EXAMPLES / name).convert("RGB")


def test_aligned_64px_faces_change_only_inside_the_eye_band(models):
    a, b = photo("a_glasses.png"), photo("b_face64.png")
    result = glasses.swap_glasses(a, b, model=models[0], classifier=models[1])
    band = eye_band()
    for src, out in ((b, result.b_with_glasses), (a, result.a_without_glasses)):
        src, out = np.asarray(src), np.asarray(out)
        assert out.shape == (64, 64, 3)
        assert (out[~band] == src[~band]).all()
        assert (out[band] != src[band]).any()


@pytest.mark.parametrize("mode", ["auto", "residual", "direct"])
def test_photo_round_trip_keeps_every_pixel_outside_the_face_region(models, mode):
    a, b = photo("a_photo_glasses.jpg"), photo("b_photo.jpg")
    result = glasses.swap_glasses(a, b, mode=mode, model=models[0], classifier=models[1])
    for src, out in ((b, result.b_with_glasses), (a, result.a_without_glasses)):
        assert out.size == src.size
        aligned = glasses.prepare(src, "test")
        region = cv2.warpAffine(glasses.band_alpha(), cv2.invertAffineTransform(aligned.matrix), src.size,
                                flags=cv2.INTER_LINEAR, borderValue=0) > 0
        changed = (np.asarray(out) != np.asarray(src)).any(-1)
        assert changed.any() and not changed[~region].any()
        assert region.mean() < 0.1  # the eye band of one face, not the photo


def test_alignment_puts_the_eyes_on_the_template():
    from core.faces import detect_faces

    b = photo("b_photo.jpg")
    aligned = glasses.prepare(b, "B")
    eyes = detect_faces(b)[0].points()[:2]
    mapped = eyes @ aligned.matrix[:, :2].T + aligned.matrix[:, 2]
    assert np.abs(mapped - GLASSES_TEMPLATE[:2] * 64).max() < 3.0


def test_clear_errors(models):
    import skimage.data

    face = photo("b_photo.jpg")
    coffee = Image.fromarray(skimage.data.coffee())
    with pytest.raises(ValueError, match="No face was found in image B"):
        glasses.swap_glasses(face, coffee, model=models[0], classifier=models[1])
    two = Image.new("RGB", (512, 256))
    two.paste(face, (0, 0))
    two.paste(face, (256, 0))
    with pytest.raises(ValueError, match="2 faces were found in image A"):
        glasses.swap_glasses(two, face, model=models[0], classifier=models[1])
    says_glasses = GlassesClassifier(width=4).eval()
    with torch.no_grad():
        says_glasses.head.weight.zero_()
        says_glasses.head.bias.fill_(5.0)
    with pytest.raises(ValueError, match="B already seems to wear glasses"):
        glasses.swap_glasses(face, face, model=models[0], classifier=says_glasses)
    with pytest.raises(ValueError, match="strength"):
        glasses.swap_glasses(face, face, strength=3, model=models[0], classifier=models[1])
