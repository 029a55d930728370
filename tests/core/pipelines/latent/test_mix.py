"""Style mixing on a tiny StyleGAN2: A keeps its layers except the chosen group, which B gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.pipelines.latent import lab, mix
from core.pipelines.latent import space as lat


def test_a_with_bs_fine_layers(stylegan):
    result = mix.run(lab.LatentSource(0), lab.LatentSource(1), mix.Settings("stylegan2.ffhq1024", "fine"), model=stylegan.model)
    assert result.captions == ["A: seed 0", "B: seed 1", "A with B's fine layers"]
    assert result.notes == "W+ layers 8-9 of A were replaced by B's." and result.details["layers"] == [8, 9]
    gen = lab.generator("stylegan2.ffhq1024", stylegan.model)  # the wrapper run() used (cached)
    w = gen.to_w(gen.z_from_seeds([0, 1]))
    expected = lat.to_uint8(gen.decode(lat.mix_styles(w[0], w[1], "fine", gen.model.n_latent)[None], "w"))
    assert np.array_equal(np.asarray(result.images[2]), expected[0])


def test_mixing_needs_stylegan2_and_a_known_group(dcgan):
    with pytest.raises(ValueError, match="Style mixing needs StyleGAN2"):
        mix.run(lab.LatentSource(0), lab.LatentSource(1), mix.Settings("dcgan.faces64"), model=dcgan.model)
    with pytest.raises(ValueError, match="coarse, middle, fine"):
        mix.Settings("stylegan2.ffhq1024", "all")
    assert torch.is_tensor(lab.latent_of(dcgan, lab.LatentSource(2))[0])
