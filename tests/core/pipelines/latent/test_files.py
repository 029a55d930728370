"""Latent files (strictly checked uploads), animations and strips."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from core.pipelines.latent import files
from core.pipelines.latent import space as lab


# --- files ------------------------------------------------------------------------------------
def test_latent_files_round_trip(dcgan, stylegan, tmp_path):
    z = dcgan.z_from_seeds([7])[0]
    loaded = files.load_latent(files.save_latent(tmp_path / "a.safetensors", z, "tiny.dcgan", "z", 7), dcgan)
    assert torch.equal(loaded.latent, z) and loaded.seed == 7 and loaded.space == "z" and loaded.model == "tiny.dcgan"
    loaded = files.load_latent(files.save_latent(tmp_path / "a.npy", z, "tiny.dcgan", "z"), dcgan)
    assert torch.equal(loaded.latent, z) and loaded.seed is None
    w_plus = lab.mix_styles(*stylegan.to_w(stylegan.z_from_seeds([0, 1])), "coarse", stylegan.model.n_latent)
    path = files.save_latent(tmp_path / "w.safetensors", w_plus, "tiny.stylegan2", "w")
    assert files.load_latent(path, stylegan).space == "w"


def test_latent_uploads_are_checked_strictly(dcgan, stylegan, tmp_path):
    from safetensors.torch import save_file

    def npy(name, array):
        np.save(tmp_path / name, array, allow_pickle=True)
        return tmp_path / name

    cases = {
        "wrong suffix": (tmp_path / "z.txt", "must be .safetensors or .npy"),
        "wrong shape": (npy("short.npy", np.zeros(5, np.float32)), r"shape \[5\]; a z latent of this generator is \[8\]"),
        "nan": (npy("nan.npy", np.full(8, np.nan, np.float32)), "NaN or infinite"),
        "huge": (npy("huge.npy", np.full(8, 1e6, np.float32)), "values up to 1e\\+06"),
        "pickle": (npy("objects.npy", np.array([{"a": 1}], dtype=object)), "not a plain numeric .npy"),
        "text": (npy("text.npy", np.array(["a"] * 8)), "a latent is an array of floats"),
    }
    (tmp_path / "z.txt").write_text("0")
    (tmp_path / "garbage.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    cases["garbage"] = (tmp_path / "garbage.safetensors", "not a valid .safetensors file")
    save_file({"latent": torch.zeros(8), "extra": torch.zeros(1)}, str(tmp_path / "two.safetensors"))
    cases["two tensors"] = (tmp_path / "two.safetensors", "exactly one tensor named 'latent'")
    save_file({"latent": torch.zeros(8)}, str(tmp_path / "other.safetensors"), metadata={"model": "stylegan2.x"})
    cases["other model"] = (tmp_path / "other.safetensors", "is a latent of stylegan2.x; choose that generator")
    (tmp_path / "big.npy").write_bytes(b"\0" * (files.MAX_LATENT_BYTES + 1))
    cases["too big"] = (tmp_path / "big.npy", "at most 1 MB")
    for what, (path, message) in cases.items():
        with pytest.raises(ValueError, match=message):
            files.load_latent(path, dcgan)
        print("ok", what)
    with pytest.raises(ValueError, match="w-space latent, which the DCGAN"):
        files.load_latent(npy("w.npy", np.zeros(8, np.float32)), dcgan, space="w")
    w_plus = np.zeros((stylegan.model.n_latent, 16), np.float32)
    assert files.load_latent(npy("wplus.npy", w_plus), stylegan, space="w").latent.shape == w_plus.shape
    with pytest.raises(ValueError, match=r"is \[16\]"):
        files.load_latent(npy("wplus_as_z.npy", w_plus), stylegan, space="z")


def test_animation_and_strip(tmp_path):
    frames = np.stack([np.full((64, 64, 3), 20 * i, np.uint8) for i in range(6)])
    path = files.animated_webp(frames, tmp_path / "walk.webp", fps=10)
    with Image.open(path) as image:
        assert image.format == "WEBP" and image.n_frames == 6 and image.size == (64, 64)
    assert files.strip(frames, cell=96).size == (6 * 96, 96)
