"""Latent encoder trainer: a tiny generator's pool, safetensors export, exact resume, and it learns."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import core.models
from core.models.dcgan import DCGANGenerator
from core.train import encoder as trainer
from core.train.__main__ import main as train_main
from core.weights import sha256_of


@pytest.fixture
def tiny_generator(tmp_path, write_manifest, isolated_cache):
    torch.manual_seed(0)
    path = tmp_path / "tiny_dcgan.safetensors"
    save_file(DCGANGenerator(nz=8, ngf=4).state_dict(), str(path))
    write_manifest({"tiny.dcgan_for_encoder": {
        "arch": "dcgan", "config": {"nz": 8, "ngf": 4}, "title": "tiny DCGAN", "license": "test",
        "sources": [{"kind": "local", "path": path.name, "sha256": sha256_of(path)}]}})  # beside the manifest
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield "tiny.dcgan_for_encoder"
    torch.set_num_threads(threads)


def args(out, steps, *extra):
    return ["encoder", "--generator", "tiny.dcgan_for_encoder", "--out", str(out), "--pool", "64", "--steps",
            str(steps), "--batch", "8", "--pixel-batch", "4", "--width", "4", "--save-every", "2", "--log-every", "1",
            *extra]


def test_export_loads_strictly_and_resume_is_exact(tiny_generator, tmp_path, capsys):
    exported = tmp_path / "encoder.safetensors"
    assert train_main(args(tmp_path / "straight", 4, "--export", str(exported))) == 0
    log = capsys.readouterr().out
    assert "sampled a pool of 64 faces" in log and "step 4/4 latent" in log and "pixel" in log
    with safe_open(str(exported), "pt") as f:
        meta = f.metadata()
    config = json.loads(meta["config"])
    assert config == {"nz": 8, "width": 4, "img_size": 64} and meta["generator"] == "tiny.dcgan_for_encoder"
    model = core.models.load("latent_encoder", load_file(str(exported)), **config)
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 8)
    train_main(args(tmp_path / "interrupted", 2))
    train_main(args(tmp_path / "interrupted", 4, "--resume", "--export", str(tmp_path / "resumed.safetensors")))
    assert "resuming at step 2" in capsys.readouterr().out
    straight, resumed = load_file(str(exported)), load_file(str(tmp_path / "resumed.safetensors"))
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    with pytest.raises(ValueError, match="no checkpoint"):
        trainer.main(args(tmp_path / "empty", 2, "--resume")[1:])


def test_the_encoder_learns_to_find_z(tiny_generator, tmp_path):
    from core.weights import load_model

    out = tmp_path / "run"
    train_main(args(out, 150, "--export", str(out / "e.safetensors"), "--lr", "2e-3", "--pixel-weight", "0",
                    "--log-every", "150"))
    generator = load_model(tiny_generator, device="cpu", dtype=torch.float32)
    z, images = trainer.sample_pool(generator, 32, seed=99)  # held out: the pool came from seed 0
    z, images = torch.from_numpy(z), trainer.to_model_range(images)
    with torch.no_grad():
        fresh = core.models.build("latent_encoder", nz=8, width=4).eval()
        trained = core.models.load("latent_encoder", load_file(str(out / "e.safetensors")), nz=8, width=4)
        before = (fresh(images) - z).pow(2).mean()
        after = (trained(images) - z).pow(2).mean()
    assert after < 0.5 * before and after < 0.6, (before, after)
