"""Back to z as a task: a 64 px face in, its reconstruction and a latent file that holds the inversion."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from core.pipelines.latent import files, invert
from core.pipelines.latent import space as lat


def test_the_encoders_answer_is_saved_and_decoded(dcgan):
    truth = dcgan.z_from_seeds([9])
    face = Image.fromarray(lat.to_uint8(dcgan.decode(truth))[0])  # 64 px: taken as aligned

    class Oracle(torch.nn.Module):
        def forward(self, image):
            return truth.expand(image.shape[0], -1)

    result = invert.run(face, invert.Settings("dcgan.faces64", "encoder"), model=dcgan.model, encoder=Oracle())
    assert result.notes.startswith("encoder: mean pixel error 0.") and result.details["method"] == "encoder"
    assert np.abs(np.asarray(result.reconstruction).astype(int) - np.asarray(face)).max() <= 1
    assert torch.equal(files.load_latent(result.latent_file, lat.LatentGenerator(dcgan.model, "dcgan.faces64")).latent, truth[0])


def test_bad_requests():
    with pytest.raises(ValueError, match="optimise, encoder, hybrid"):
        invert.Settings("dcgan.faces64", "magic")
    with pytest.raises(ValueError, match="Upload a photo with one face"):
        invert.run(None)
