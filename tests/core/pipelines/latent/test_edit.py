"""Editing a photo through its latent: the face moves along a direction, the rest of the photo stays."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from core.pipelines.latent import attributes, edit, files
from core.pipelines.latent import space as lat
from core.pipelines.latent.inversion import face_ellipse


def test_a_latent_file_edit_changes_only_the_face(dcgan, tmp_path):
    z = dcgan.z_from_seeds([4])[0]
    face = Image.fromarray(lat.to_uint8(dcgan.decode(z))[0])
    latent = files.save_latent(tmp_path / "z.safetensors", z, "dcgan.faces64", "z")
    direction = torch.zeros_like(z)
    direction[0] = 3.0
    shipped = tmp_path / "directions.safetensors"
    attributes.save_directions(shipped, {"yaw": direction}, {"samples": 1}, "dcgan.faces64")
    result = edit.run(face, str(latent), edit.Settings("dcgan.faces64", attribute="yaw", alpha=1.0),
                      model=dcgan.model, shipped={"dcgan.faces64": shipped})
    out, original = np.asarray(result.image).astype(int), np.asarray(face).astype(int)
    assert np.abs(out - original).max() > 0 and (out[face_ellipse(64) == 0] == original[face_ellipse(64) == 0]).all()
    assert [caption for _, caption in result.steps] == ["aligned face", "G(z): its inversion", "G(z +1 d)",
                                                        "edited face"]
    assert result.notes.endswith("Edited along yaw by alpha +1 (residual).")
    with pytest.raises(ValueError, match="No 'eyeglasses' direction for this generator; choose one of yaw"):
        edit.run(face, str(latent), edit.Settings("dcgan.faces64"), model=dcgan.model, shipped={"dcgan.faces64": shipped})


def test_bad_requests():
    with pytest.raises(ValueError, match="residual' or 'direct"):
        edit.Settings("dcgan.faces64", blend="blend")
    with pytest.raises(ValueError, match="Upload the photo to edit"):
        edit.run(None)
