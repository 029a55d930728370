"""Photo pipeline of the glasses app: alignment, swap, paste-back that leaves everything else untouched.

The photo mode (the default) is checked with the shipped weights on real portraits: Grace Hopper
(wears glasses) and the astronaut Eileen Collins (does not), both public domain.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from core.pipelines.glasses import swap as glasses
from core.models.genegan import GeneGAN
from core.models.glasses_classifier import GlassesClassifier
from core.pipelines.glasses.layout import eye_band, template

EXAMPLES = Path(__file__).resolve().parents[4] / "apps" / "glasses" / "examples"


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
    result = glasses.run(a, b, glasses.Settings(mode="auto"), model=models[0], classifier=models[1])
    band = eye_band()
    for src, out in ((b, result.b_with_glasses), (a, result.a_without_glasses)):
        src, out = np.asarray(src), np.asarray(out)
        assert out.shape == (64, 64, 3)
        assert (out[~band] == src[~band]).all()
        assert (out[band] != src[band]).any()


@pytest.mark.parametrize("mode", ["auto", "residual", "direct"])
def test_photo_round_trip_keeps_every_pixel_outside_the_face_region(models, mode):
    a, b = photo("a_photo_glasses.jpg"), photo("b_photo.jpg")
    result = glasses.run(a, b, glasses.Settings(mode=mode), model=models[0], classifier=models[1])
    for src, out in ((b, result.b_with_glasses), (a, result.a_without_glasses)):
        assert out.size == src.size
        aligned = glasses.locate(src, "test").aligned
        region = cv2.warpAffine(glasses.band_alpha(), cv2.invertAffineTransform(aligned.matrix), src.size,
                                flags=cv2.INTER_LINEAR, borderValue=0) > 0
        changed = (np.asarray(out) != np.asarray(src)).any(-1)
        assert changed.any() and not changed[~region].any()
        assert region.mean() < 0.1  # the eye band of one face, not the photo


def test_alignment_puts_the_eyes_on_the_template():
    from core.faces import detect_faces

    b = photo("b_photo.jpg")
    aligned = glasses.locate(b, "B").aligned
    eyes = detect_faces(b)[0].points()[:2]
    mapped = eyes @ aligned.matrix[:, :2].T + aligned.matrix[:, 2]
    assert np.abs(mapped - template()[:2] * 64).max() < 3.0


def test_clear_errors(models):
    import skimage.data

    face = photo("b_photo.jpg")
    coffee = Image.fromarray(skimage.data.coffee())
    with pytest.raises(ValueError, match="No face was found in image B"):
        glasses.run(face, coffee, model=models[0], classifier=models[1])
    two = Image.new("RGB", (512, 256))
    two.paste(face, (0, 0))
    two.paste(face, (256, 0))
    with pytest.raises(ValueError, match="2 faces were found in image A"):
        glasses.run(two, face, model=models[0], classifier=models[1])
    says_glasses = GlassesClassifier(width=4).eval()
    with torch.no_grad():
        says_glasses.head.weight.zero_()
        says_glasses.head.bias.fill_(5.0)
    with pytest.raises(ValueError, match="B already seems to wear glasses"):
        glasses.run(face, face, model=models[0], classifier=says_glasses)
    with pytest.raises(ValueError, match="strength"):
        glasses.run(face, face, glasses.Settings(strength=3), model=models[0], classifier=models[1])


def test_photo_mode_returns_both_photos_unchanged_when_a_wears_no_glasses(models):
    a, b = photo("b_photo.jpg"), photo("a_glasses.png")  # the classifier fixture says "no glasses" for all
    result = glasses.run(a, b, model=models[0], classifier=models[1])
    assert np.array_equal(np.asarray(result.a_without_glasses), np.asarray(a))
    assert np.array_equal(np.asarray(result.b_with_glasses), np.asarray(b))
    assert "does not seem to wear glasses" in result.notes[0]


@pytest.fixture(scope="module")
def real_swap():
    import skimage.data

    hopper, astronaut = photo("grace_hopper.jpg"), Image.fromarray(skimage.data.astronaut())
    return hopper, astronaut, glasses.run(hopper, astronaut, glasses.Settings(inpaint_method="telea"))


def _eyes(image):
    from core.faces import single_face
    from core.pipelines.glasses.mask import EYE_AXES, _ellipse, _face_frame

    eyes = single_face(image).points()[:2]
    along, _, distance = _face_frame(eyes)
    shape = (image.height, image.width)
    return _ellipse(shape, eyes[0], along, np.multiply(EYE_AXES, distance)) | \
        _ellipse(shape, eyes[1], along, np.multiply(EYE_AXES, distance))


@pytest.mark.real_weights("genegan.eyeglasses64", "genegan.glasses_classifier64")
def test_real_removal_changes_only_the_frames_and_the_classifier_sees_no_glasses(real_swap):
    hopper, _, result = real_swap
    before, after = np.asarray(hopper), np.asarray(result.a_without_glasses)
    changed = (before != after).any(-1)
    hole = result.masks["hole"]
    assert changed.any() and not changed[~hole].any()  # bit-exact outside the mask
    assert 0.005 < hole.mean() < 0.05  # the frames of one pair of glasses, not the eye band
    assert not changed[_eyes(hopper)].any()  # the eyes behind the clear lenses are the photo's own
    assert result.probabilities["a"] > 0.9 and result.probabilities["a_without"] < 0.5


@pytest.mark.real_weights("genegan.eyeglasses64", "genegan.glasses_classifier64")
def test_real_addition_puts_a_clean_frame_matte_on_b(real_swap):
    _, astronaut, result = real_swap
    before, after = np.asarray(astronaut), np.asarray(result.b_with_glasses)
    matte = result.masks["matte"] > 0
    changed = (before != after).any(-1)
    assert changed.any() and not changed[~matte].any()  # no speckle outside the frame matte
    assert 0.002 < matte.mean() < 0.03
    count, _, stats, _ = cv2.connectedComponentsWithStats(matte.astype(np.uint8), connectivity=8)
    assert count - 1 <= 6 and stats[1:, cv2.CC_STAT_AREA].min() >= 20  # a frame in a few pieces, no specks
    assert not changed[_eyes(astronaut)].any()  # the face under the lenses is untouched
    assert result.probabilities["b"] < 0.5 and result.probabilities["b_with"] > 0.5


@pytest.mark.real_weights("genegan.eyeglasses64", "genegan.glasses_classifier64")
def test_real_addition_strength_scales_the_frames(real_swap):
    hopper, astronaut, full = real_swap
    half = glasses.run(hopper, astronaut, glasses.Settings(strength=0.5, inpaint_method="telea"))
    none = glasses.run(hopper, astronaut, glasses.Settings(strength=0.0, inpaint_method="telea"))
    b = np.asarray(astronaut).astype(int)
    change = [np.abs(np.asarray(r.b_with_glasses).astype(int) - b).sum() for r in (none, half, full)]
    assert change[0] == 0 and 0 < change[1] < change[2]


def test_swap_crops_is_the_papers_swap_on_tiny_weights(models):
    """B gets join(B, s x_A); A gets join(A, (1 - s) x_A), which at s = 1 is the paper's removal join(A, 0);
    the reconstructions are join(A, x_A) and join(B, 0), as in training."""
    model = models[0]
    a, b = np.asarray(photo("a_glasses.png")), np.asarray(photo("b_face64.png"))
    x = torch.from_numpy(np.stack([a, b])).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        (bg_a, bg_b), (obj_a, _) = (t.split(1) for t in model.split(x))
        join = lambda bg, obj: model.join(bg, obj).clamp(0, 255).permute(0, 2, 3, 1)[0].numpy()  # noqa: E731
        expected = {"b_with": join(bg_b, 0.7 * obj_a), "a_without": join(bg_a, 0.3 * obj_a),
                    "a_rec": join(bg_a, obj_a), "b_rec": join(bg_b, torch.zeros_like(obj_a))}
        removal = join(bg_a, torch.zeros_like(obj_a))
    out = glasses.swap_crops(model, a, b, strength=0.7)
    for name, value in expected.items():
        np.testing.assert_allclose(out[name], value, atol=1e-3, err_msg=name)
    np.testing.assert_allclose(glasses.swap_crops(model, a, b, strength=1.0)["a_without"], removal, atol=1e-3)
    assert np.abs(out["b_with"] - out["b_rec"]).mean() > 1  # the object moved: the check can fail


def test_settings_check_themselves_and_the_result_records_them(models):
    for bad, message in (({"mode": "paste"}, "mode must be one of 'photo'"), ({"strength": -0.1}, "strength"),
                         ({"removal_passes": 4}, "removal_passes must be 1, 2 or 3")):
        with pytest.raises(ValueError, match=message):
            glasses.Settings(**bad)
    defaults = glasses.Settings()
    assert (defaults.model_id, defaults.classifier_id) == ("genegan.eyeglasses64", "genegan.glasses_classifier64")
    with pytest.raises(ValueError, match="Please give both images"):
        glasses.run(photo("a_glasses.png"), None, model=models[0], classifier=models[1])
    result = glasses.run(photo("a_glasses.png"), photo("b_face64.png"), glasses.Settings(mode="direct", strength=0.5),
                         model=models[0], classifier=models[1])
    assert result.details["mode"] == "direct" and result.details["strength"] == 0.5
    assert result.details["probabilities"] == result.probabilities and set(result.probabilities) == {
        "a", "b", "a_without", "b_with"}


def test_band_alpha_is_one_inside_the_band_and_zero_outside():
    alpha, band = glasses.band_alpha(), eye_band()
    assert alpha.max() == 1.0 and (alpha[~band] == 0).all() and 0 < alpha[band].min() < 1
