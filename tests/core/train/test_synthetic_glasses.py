"""The eyeglasses renderer: deterministic, soft-edged, only inside the eye band, parameters visible."""

from __future__ import annotations

import numpy as np
import pytest

from core.pipelines.glasses.layout import eye_band, template
from core.train.synthetic_glasses import SHAPES, GlassesParams, glasses_layers, random_glasses, render_glasses

EYES = template()[:2] * 64


def flat_face(value: int = 150) -> np.ndarray:
    return np.full((64, 64, 3), value, np.uint8)


def test_random_glasses_are_deterministic_and_varied():
    a = [random_glasses(np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]
    many = [random_glasses(np.random.default_rng(s)) for s in range(200)]
    assert {g.shape for g in many} == set(SHAPES)
    assert len({g.bridge for g in many}) == 3 and {g.temples for g in many} == {True, False}
    assert len({g.frame_rgb for g in many}) > 150
    assert any(g.tint_alpha > 0.3 for g in many) and any(g.tint_alpha < 0.05 for g in many)


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_draws_a_soft_frame_inside_the_eye_band(shape):
    g = random_glasses(np.random.default_rng(1))
    g = GlassesParams(**{**g.to_dict(), "shape": shape, "temples": True, "lens_width": 0.9})
    out, frame = render_glasses(flat_face(), EYES, g)
    band = eye_band()
    assert (out[~band] == 150).all()  # nothing is drawn outside the band
    assert frame.max() > 0.9 and ((frame > 0.05) & (frame < 0.95)).any()  # drawn at 4x: soft edges
    assert 0.02 < (frame > 0.5).mean() < 0.2


def test_frame_colour_and_tint_are_what_the_parameters_say():
    g = GlassesParams(shape="rect", frame_rgb=(200, 20, 30), thickness=2.5, lens_width=0.8, lens_height=0.7,
                      lens_dy=0.0, bridge="straight", temples=False, tint_rgb=(0, 0, 255), tint_alpha=0.5)
    out, frame = render_glasses(flat_face(100), EYES, g)
    solid = frame > 0.99
    assert solid.sum() > 20
    np.testing.assert_allclose(out[solid].mean(0), (200, 20, 30), atol=1)
    _, lens = glasses_layers(EYES, g)
    inside = (lens > 0.99) & (frame < 0.01)
    np.testing.assert_allclose(out[inside].mean(0), (50, 50, 178), atol=1)  # 100 * 0.5 + tint * 0.5


def test_glasses_follow_the_eyes():
    g = random_glasses(np.random.default_rng(3))
    _, frame = render_glasses(flat_face(), EYES, g)
    _, moved = render_glasses(flat_face(), EYES + [2, 1], g)
    ys, xs = np.nonzero(frame > 0.5)
    ys2, xs2 = np.nonzero(moved > 0.5)
    assert abs(xs2.mean() - xs.mean() - 2) < 0.3 and abs(ys2.mean() - ys.mean() - 1) < 0.3
