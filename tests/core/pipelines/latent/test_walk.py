"""Walks between two latents: both methods measured, the chosen one shown, the ends where they belong."""

from __future__ import annotations

import numpy as np
import pytest

from core.pipelines.latent import lab, walk
from core.pipelines.latent import space as lat


def test_the_walk_starts_at_a_and_ends_at_b(dcgan):
    result = walk.run(lab.LatentSource(seed=3), lab.LatentSource(seed=4),
                      walk.Settings("dcgan.faces64", method="lerp", frames=5), model=dcgan.model)
    ends = lat.to_uint8(dcgan.decode(dcgan.z_from_seeds([3, 4])))
    assert result.frames.shape == (5, 64, 64, 3)
    assert np.array_equal(result.frames[0], ends[0]) and np.array_equal(result.frames[-1], ends[1])
    assert set(result.details["smoothness"]) == {"lerp", "slerp"} and "| lerp (shown) |" in result.notes
    assert result.details["from"] == "seed 3" and result.strip.size == (5 * 96, 96)


def test_bad_walks_are_refused(dcgan):
    with pytest.raises(ValueError, match="between 2 and 120"):
        walk.Settings("dcgan.faces64", frames=1)
    with pytest.raises(ValueError, match="lerp, slerp"):
        walk.Settings("dcgan.faces64", method="cubic")
    with pytest.raises(ValueError, match="latent space"):
        walk.run(lab.LatentSource(0), lab.LatentSource(1), walk.Settings("dcgan.faces64", space="w"), model=dcgan.model)
    with pytest.raises(ValueError, match="Give a seed or upload a latent file"):
        walk.run(lab.LatentSource(), lab.LatentSource(1), walk.Settings("dcgan.faces64"), model=dcgan.model)
