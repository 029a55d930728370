"""Reading safetensors files into owned memory."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from core import weights


def test_read_safetensors_matches_the_library_and_owns_its_memory(tmp_path):
    from safetensors.torch import load_file

    state = {
        "half": torch.arange(3, dtype=torch.float16),  # 6 bytes: the next tensor may start unaligned
        "float": torch.randn(2, 3),
        "long": torch.tensor([1, -2, 3]),
        "bf16": torch.randn(5).to(torch.bfloat16),
        "byte": torch.tensor([7], dtype=torch.uint8),
        "empty": torch.zeros(0, 4),
    }
    path = tmp_path / "mixed.safetensors"
    save_file(state, str(path), metadata={"note": "x"})
    ours, library = weights.read_safetensors(path), load_file(str(path))
    assert set(ours) == set(library) == set(state)
    for key in state:
        assert ours[key].dtype == library[key].dtype and ours[key].shape == library[key].shape
        assert torch.equal(ours[key], library[key])
    path.write_bytes(b"\0" * path.stat().st_size)  # the file changes under a loaded model
    assert torch.equal(ours["float"], state["float"])


@pytest.mark.parametrize("damage", ["truncated", "bad_header", "short"])
def test_read_safetensors_rejects_damaged_files(tmp_path, damage):
    path = tmp_path / "d.safetensors"
    save_file({"w": torch.randn(4, 4)}, str(path))
    data = path.read_bytes()
    path.write_bytes({"truncated": data[:-10], "bad_header": (10**9).to_bytes(8, "little") + data[8:],
                      "short": data[:5]}[damage])
    with pytest.raises(ValueError, match="safetensors file|outside the file|bytes for shape"):
        weights.read_safetensors(path)
