"""Finding eyeglass frames at a photo's resolution: the ring search on drawn glasses with known truth."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.pipelines.glasses import mask as glasses_mask

EYES = np.array([[98.0, 120.0], [158.0, 120.0]])  # 60 px apart


def drawn_face(frame_colour=(40, 30, 25), seed=0):
    """Skin with noise and wrinkle-like faint lines, dark eyes, and a pair of drawn frames (the truth)."""
    rng = np.random.default_rng(seed)
    skin = np.full((256, 256, 3), (205, 160, 135), np.float32) + rng.normal(0, 4, (256, 256, 3))
    for y in range(150, 200, 9):  # faint lines below the glasses (wrinkles)
        cv2.line(skin, (60, y), (200, y + 4), (185, 140, 118), 1)
    for eye in EYES.astype(int):
        cv2.ellipse(skin, tuple(eye), (11, 5), 0, 0, 360, (60, 45, 40), -1)
    truth = np.zeros((256, 256), np.uint8)
    for eye in EYES.astype(int):
        cv2.ellipse(truth, (int(eye[0]), int(eye[1]) + 3), (25, 18), 0, 0, 360, 1, 4)
    cv2.line(truth, (123, 114), (133, 114), 1, 4)  # bridge
    image = np.where(truth[..., None] > 0, np.asarray(frame_colour, np.float32), skin)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), truth > 0


def test_best_ring_follows_a_closed_line_and_ignores_a_stronger_speck():
    polar = np.zeros((glasses_mask.ANGLES, glasses_mask.RADII), np.float32)
    truth = (20 + 6 * np.sin(np.linspace(0, 2 * np.pi, glasses_mask.ANGLES, endpoint=False))).round().astype(int)
    polar[np.arange(glasses_mask.ANGLES), truth] = 1.0
    polar[10, 50] = 3.0  # one strong pixel far from the line
    path = glasses_mask._best_ring(polar)
    assert np.abs(path - truth).max() <= 1


def test_drawn_frames_are_found_and_the_eyes_are_never_in_the_mask():
    image, truth = drawn_face()
    mask = glasses_mask.find_frames(image, EYES)
    found = mask.frames
    iou = (found & truth).sum() / (found | truth).sum()
    assert iou > 0.5, iou
    assert (mask.hole & truth).sum() / truth.sum() > 0.95  # the inpainting hole covers the frames
    assert not (mask.hole & mask.lenses).any()
    along, _, distance = glasses_mask._face_frame(EYES)
    for eye in EYES:
        eye_area = glasses_mask._ellipse(found.shape, eye, along, np.multiply(glasses_mask.EYE_AXES, distance))
        assert not mask.hole[eye_area].any()
    assert mask.lenses[tuple(EYES[0, ::-1].astype(int) + [6, 0])]  # below the left eye, inside its lens
    assert mask.hole[~glasses_mask._grow(truth, 0.1 * distance)].mean() < 0.002  # no wrinkles taken


def test_light_metal_frames_are_found_too():
    image, truth = drawn_face(frame_colour=(245, 235, 225), seed=1)
    found = glasses_mask.find_frames(image, EYES).frames
    assert (found & truth).sum() / truth.sum() > 0.5


def test_a_face_without_glasses_gives_a_small_mask_only():
    image, truth = drawn_face()
    bare = cv2.inpaint(image, (glasses_mask._grow(truth, 2)).astype(np.uint8), 3, cv2.INPAINT_TELEA)
    mask = glasses_mask.find_frames(bare, EYES)
    assert mask.coverage < 0.5 or mask.hole.sum() < 0.3 * truth.sum()


@pytest.mark.parametrize("shape", [(64, 64), (96, 80)])
def test_model_evidence_stays_in_the_eye_band(shape):
    from core.pipelines.glasses.layout import eye_band

    rng = np.random.default_rng(0)
    with_object = rng.uniform(0, 255, (64, 64, 3)).astype(np.float32)
    evidence = glasses_mask.model_evidence(with_object, with_object * 0.5, rng.uniform(0, 1, (64, 64)))
    assert evidence.shape == (64, 64)
    assert evidence[~eye_band()].max() == 0 and 0.5 < evidence.max() <= 1.0


def test_a_large_photo_gives_the_same_frames_as_a_small_one():
    image, _ = drawn_face()
    small = glasses_mask.find_frames(image, EYES).frames
    scale = 3  # eyes 180 px apart: scored at glasses_mask.SCORE_EYE_DISTANCE, then upscaled
    big_image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    big = glasses_mask.find_frames(big_image, EYES * scale + (scale - 1) / 2).frames
    shrunk = cv2.resize(big.astype(np.uint8), small.shape[::-1], interpolation=cv2.INTER_AREA) > 0
    assert (shrunk & small).sum() / (shrunk | small).sum() > 0.6
