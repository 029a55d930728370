"""The resolver's order (override, store, sources) and its error messages."""

from __future__ import annotations

import io
import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

from core import weights
from core.weights import WeightsUnavailableError
from tests.support.tiny_weights import TINY, hf_entry, pickled, tiny_state


def test_local_override_wins(local_hub, write_manifest, tmp_path, monkeypatch):
    write_manifest({"tiny.a": hf_entry("org/none", "g.safetensors", "b" * 40)})
    override = tmp_path / "override"
    override.mkdir()
    save_file(tiny_state(3), str(override / "tiny.a.safetensors"))
    monkeypatch.setenv("GANHUB_WEIGHTS_DIR", str(override))
    state = weights.load_state_dict("tiny.a")
    assert torch.equal(state["main.0.weight"], tiny_state(3)["main.0.weight"])
    assert local_hub.requests == []


def test_error_lists_every_source_tried(local_hub, write_manifest, tmp_path):
    entry = hf_entry("org/missing", "g.safetensors", "c" * 40)
    entry["sources"].append({"kind": "local", "path": "absent.safetensors", "sha256": None})
    write_manifest({"tiny.gone": entry})
    with pytest.raises(WeightsUnavailableError) as err:
        weights.resolve("tiny.gone")
    message = str(err.value)
    assert "1. Hugging Face Hub org/missing/g.safetensors" in message
    assert "2. local file" in message and "absent.safetensors" in message
    assert "GANHUB_WEIGHTS_DIR" in message


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/ganhub_pwned",))


def test_malicious_pickle_is_rejected_without_running(local_hub, write_manifest, tmp_path):
    marker = "/tmp/ganhub_pwned"
    if os.path.exists(marker):
        os.remove(marker)
    payload = pickled({"main.0.weight": torch.zeros(1), "evil": _Evil()})
    commit = local_hub.add_file("org/evil", "g.pth", payload)
    write_manifest({"tiny.evil": hf_entry("org/evil", "g.pth", commit, fmt={"type": "torch_pickle"})})
    with pytest.raises(WeightsUnavailableError, match="not a loadable tensor-only torch checkpoint"):
        weights.resolve("tiny.evil")
    assert not os.path.exists(marker)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(io.BytesIO(payload), weights_only=True)


def test_user_facing_messages_show_no_absolute_server_paths(isolated_cache, write_manifest):
    write_manifest({"tiny.local": {"arch": "dcgan", "config": TINY, "title": "t", "license": "MIT",
                                   "sources": [{"kind": "local", "path": "no/such.safetensors", "sha256": "0" * 64}]}})
    with pytest.raises(WeightsUnavailableError) as err:
        weights.resolve("tiny.local")
    text = str(err.value) + weights.how_to_provide(weights.get_entry("tiny.local"))
    for absolute in (str(weights.cache_dir()), str(weights.REPO_ROOT), str(isolated_cache)):
        assert absolute not in text
    assert "$GANHUB_CACHE" in text and "no/such.safetensors does not exist beside the manifest or in the repository" in text
    assert weights.display_path(weights.cache_dir() / "converted" / "x") == "$GANHUB_CACHE/converted/x"
