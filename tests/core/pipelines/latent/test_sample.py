"""Explore: samples from seeds, each with a latent file that gives the same face back."""

from __future__ import annotations

import pytest
import torch

from core.pipelines.latent import files, sample
from core.pipelines.latent import space as lab


def test_each_sample_is_its_seed_and_its_file_holds_that_latent(dcgan):
    result = sample.run(sample.Settings("dcgan.faces64", seed=5, count=3), model=dcgan.model)
    assert result.seeds == [5, 6, 7] and result.notes == "Seeds 5-7." and len(result.images) == 3
    assert result.details == {"model_id": "dcgan.faces64", "seed": 5, "count": 3, "psi": 1.0, "seeds": [5, 6, 7]}
    loaded = files.load_latent(result.latent_files[1], lab.LatentGenerator(dcgan.model, "dcgan.faces64"))
    assert loaded.seed == 6 and torch.equal(loaded.latent, dcgan.z_from_seeds([6])[0])


def test_settings_refuse_what_the_lab_cannot_do():
    with pytest.raises(ValueError, match="between 1 and 64, got 65"):
        sample.Settings("dcgan.faces64", count=65)
    with pytest.raises(ValueError, match="Unknown generator 'tiny'; choose one of dcgan.faces64, stylegan2.ffhq1024"):
        sample.Settings("tiny")
    assert sample.Settings().model_id == "dcgan.faces64"  # the manifest's first latent generator
