import pytest
import torch

import core.models
from core.pipelines.translate import translate_tensor
from core.pipelines.tiling import run_tiled, tile_starts, window_1d


def gradient(height: int, width: int) -> torch.Tensor:
    x = torch.empty(1, 3, height, width)
    x[:, 0] = torch.linspace(-1, 1, width)[None, :]
    x[:, 1] = torch.linspace(-1, 1, height)[:, None]
    x[:, 2] = x[:, 0] * x[:, 1]
    return x


def pointwise(t: torch.Tensor) -> torch.Tensor:
    return torch.tanh(1.7 * t + 0.3) * 0.8 - 0.1


def tile_normalising(t: torch.Tensor) -> torch.Tensor:
    """A stand-in for instance norm: each tile is shifted by its own mean (a seam source when tiled naively)."""
    return t - t.mean(dim=(2, 3), keepdim=True)


def max_step(y: torch.Tensor) -> float:
    return max(float((y[..., 1:] - y[..., :-1]).abs().max()), float((y[..., 1:, :] - y[..., :-1, :]).abs().max()))


@pytest.mark.parametrize("length,tile,overlap",
                         [(10, 64, 16), (64, 64, 16), (65, 64, 16), (333, 64, 16), (1000, 256, 64)])
def test_tiles_cover_everything_with_at_least_the_overlap(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and min(starts[-1] + tile, length) == length
    for a, b in zip(starts, starts[1:]):
        assert b - a <= tile - overlap and b > a


def test_window_is_positive_and_flat_inside():
    w = window_1d(64, 16, True, True)
    assert (w > 0).all() and w[16:48].eq(1).all() and (w[:16].diff() > 0).all()
    assert window_1d(64, 16, False, False).eq(1).all()


def test_constant_image_stays_constant():
    x = torch.full((1, 3, 150, 230), 0.37)
    out = run_tiled(pointwise, x, tile=64, overlap=16)
    torch.testing.assert_close(out, pointwise(x), atol=1e-6, rtol=0)


def test_no_seam_on_a_gradient():
    x = gradient(150, 230)
    # a pointwise network gives exactly its untiled output: no seam at all
    torch.testing.assert_close(run_tiled(pointwise, x, tile=64, overlap=16), pointwise(x), atol=1e-6, rtol=0)
    # a network whose output depends on the tile's statistics: naive tiling makes steps at the tile
    # borders; the blend spreads the difference over the overlap, so no step stands out
    naive = run_tiled(tile_normalising, x, tile=64, overlap=0)
    blended = run_tiled(tile_normalising, x, tile=64, overlap=32)
    input_step = max_step(x)
    assert max_step(naive) > 10 * input_step
    assert max_step(blended) < 4 * input_step


def test_output_size_equals_input_size_in_both_modes():
    torch.manual_seed(0)
    model = core.models.build("cyclegan_resnet", ngf=4, n_blocks=1).eval()
    x = torch.rand(1, 3, 75, 113) * 2 - 1
    for mode in ("tiled", "resize"):
        out = translate_tensor(model, x, mode=mode, size=32)
        assert out.shape == x.shape, mode
        assert out.abs().max() <= 1


def test_tiled_equals_whole_image_for_a_local_network_away_from_tile_edges():
    conv = torch.nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect")
    with torch.no_grad():
        x = torch.rand(1, 3, 120, 200)
        whole = conv(x)
        tiled = run_tiled(conv, x, tile=64, overlap=32)
    # with a 1-pixel receptive radius, only the outermost tile pixels differ, and they carry almost no weight
    assert (tiled - whole).abs().max() < 0.02


def test_stopping_early_blends_the_fallback_into_the_tiles_not_done():
    x = torch.rand(1, 3, 40, 56)
    calls = []

    def stop_after_three():
        return len(calls) >= 3

    def fn(t):
        calls.append(1)
        return t * 2

    # A pointwise network and a fallback that is exactly its whole-image output: the same result.
    out = run_tiled(fn, x, 16, 4, should_stop=stop_after_three, fallback=lambda t: t * 2)
    assert len(calls) == 3 < len(tile_starts(40, 16, 4)) * len(tile_starts(56, 16, 4))
    assert torch.allclose(out, x * 2, atol=1e-6)
    # A different fallback shows where it was used: the last rows come from it alone, the first tile from fn.
    calls.clear()
    out = run_tiled(fn, x, 16, 4, should_stop=stop_after_three, fallback=lambda t: torch.zeros_like(t))
    assert torch.allclose(out[..., :12, :12], x[..., :12, :12] * 2) and torch.equal(out[..., 30:, :], torch.zeros(1, 3, 10, 56))
    calls.clear()
    assert torch.equal(run_tiled(fn, x, 16, 4, should_stop=lambda: True, fallback=lambda t: t + 1), x + 1)
