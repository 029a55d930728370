"""Run an image-to-image network over overlapping tiles and blend them without seams.

Each tile's output is weighted by a window that is 1 inside the tile and falls off smoothly
(half a cosine) over the ``overlap`` pixels it shares with a neighbour; image borders get no
fall-off. The weighted outputs are summed and divided by the summed weights, so any pixel is a
convex combination of the tiles that cover it: a network that maps a constant image to a
constant gives back exactly that constant, and a pointwise network gives exactly its untiled
output. Normalisation layers that see only one tile (InstanceNorm) differ from tile to tile; the
wide smooth overlap turns those differences into gradual transitions instead of edges.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from core.images import pad_to_multiple, unpad


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` px covering ``length`` px with at least ``overlap`` px shared."""
    if tile <= 0 or not 0 <= overlap < tile:
        raise ValueError(f"Need 0 <= overlap < tile, got tile {tile}, overlap {overlap}.")
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)  # the last tile ends exactly at the border
    return starts


def _ramp(length: int, device, dtype) -> torch.Tensor:
    """Half a cosine rising from ~0 to ~1 over ``length`` pixels (never exactly 0)."""
    t = (torch.arange(length, device=device, dtype=torch.float64) + 0.5) / length
    return (0.5 - 0.5 * torch.cos(torch.pi * t)).to(dtype)


def window_1d(size: int, overlap: int, fade_start: bool, fade_end: bool, device=None,
              dtype=torch.float32) -> torch.Tensor:
    """1-D weights for a tile of ``size`` px: ramps of ``overlap`` px on the sides that have a neighbour."""
    w = torch.ones(size, device=device, dtype=dtype)
    ramp = min(overlap, size // 2)
    if ramp > 0:
        if fade_start:
            w[:ramp] = _ramp(ramp, device, dtype)
        if fade_end:
            w[size - ramp:] = _ramp(ramp, device, dtype).flip(0)
    return w


def run_tiled(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: int, overlap: int,
              multiple: int = 1, progress: Callable[[int, int], None] | None = None,
              should_stop: Callable[[], bool] | None = None,
              fallback: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Apply ``fn`` (NCHW -> NCHW of the same size) to ``x`` tile by tile and blend.

    ``multiple``: tiles are reflect-padded (bottom/right) to a multiple of it before ``fn`` and
    cropped back. ``progress(done, total)`` is called after each tile. When ``should_stop()``
    turns true before a tile (a time budget ran out), the tiles not yet done are taken from
    ``fallback(x)`` (a cheaper whole-image version) with the same blending windows, so the
    result is complete and has no seam where the tiles stop.
    """
    if x.ndim != 4:
        raise ValueError(f"Expected an NCHW tensor, got shape {tuple(x.shape)}.")
    height, width = x.shape[-2:]
    ys, xs = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    out = None
    weight = torch.zeros(1, 1, height, width, device=x.device, dtype=torch.float32)
    total, done = len(ys) * len(xs), 0

    def window(iy: int, ix: int) -> torch.Tensor:
        wy = window_1d(min(ys[iy] + tile, height) - ys[iy], overlap, iy > 0, iy < len(ys) - 1, device=x.device)
        wx = window_1d(min(xs[ix] + tile, width) - xs[ix], overlap, ix > 0, ix < len(xs) - 1, device=x.device)
        return (wy[:, None] * wx[None, :])[None, None]

    for iy, y0 in enumerate(ys):
        for ix, x0 in enumerate(xs):
            y1, x1 = min(y0 + tile, height), min(x0 + tile, width)
            if should_stop is not None and fallback is not None and should_stop():
                return _finish_with_fallback(fallback(x).float(), out, weight, window, ys, xs, tile, done)
            patch, size = pad_to_multiple(x[..., y0:y1, x0:x1], multiple)
            result = unpad(fn(patch), size).float()
            if out is None:
                out = torch.zeros(x.shape[0], result.shape[1], height, width, device=x.device, dtype=torch.float32)
            w = window(iy, ix)
            out[..., y0:y1, x0:x1] += result * w
            weight[..., y0:y1, x0:x1] += w
            done += 1
            if progress is not None:
                progress(done, total)
    return out / weight


def _finish_with_fallback(whole: torch.Tensor, out, weight, window, ys, xs, tile: int, done: int) -> torch.Tensor:
    """Blend ``whole`` in as the output of every tile after the first ``done``."""
    if out is None:
        return whole
    height, width = weight.shape[-2:]
    for k in range(done, len(ys) * len(xs)):
        iy, ix = divmod(k, len(xs))
        y0, x0 = ys[iy], xs[ix]
        y1, x1 = min(y0 + tile, height), min(x0 + tile, width)
        w = window(iy, ix)
        out[..., y0:y1, x0:x1] += whole[..., y0:y1, x0:x1] * w
        weight[..., y0:y1, x0:x1] += w
    return out / weight
