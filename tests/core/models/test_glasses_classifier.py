"""The eyeglasses classifier: its computation written out with functional ops, strict loading, the shipped weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import core.models as registry
from core.models.glasses_classifier import GlassesClassifier

EXAMPLES = Path(__file__).resolve().parents[3] / "apps" / "glasses" / "examples"


def randomised(width: int = 4) -> GlassesClassifier:
    torch.manual_seed(0)
    model = GlassesClassifier(width=width)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):  # statistics that are not the identity
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def reference_logits(state: dict[str, torch.Tensor], image: torch.Tensor) -> torch.Tensor:
    """[0, 255] -> [-1, 1]; four conv3x3/s2 (no bias) + BatchNorm(eps 1e-5) + ReLU; NCHW flatten; linear."""
    h = image / 127.5 - 1.0
    for i in range(4):
        conv, bn = f"features.{3 * i}", f"features.{3 * i + 1}"
        h = F.conv2d(h, state[f"{conv}.weight"], stride=2, padding=1)
        h = (h - state[f"{bn}.running_mean"][:, None, None]) / torch.sqrt(state[f"{bn}.running_var"][:, None, None] + 1e-5)
        h = F.relu(h * state[f"{bn}.weight"][:, None, None] + state[f"{bn}.bias"][:, None, None])
    return h.flatten(1) @ state["head.weight"][0] + state["head.bias"][0]


def test_logits_are_the_reference_computation():
    model = randomised(width=4)
    image = torch.rand(3, 3, 64, 64) * 255
    with torch.no_grad():
        logits = model(image)
        assert logits.shape == (3,)
        torch.testing.assert_close(logits, reference_logits(model.state_dict(), image), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(model.probability(image), torch.sigmoid(logits))


def test_the_spatial_layout_matters():
    """No global pooling: the same dark bar over the eyes and over the chin give different logits."""
    model = randomised(width=4)
    eyes, chin = torch.full((1, 3, 64, 64), 200.0), torch.full((1, 3, 64, 64), 200.0)
    eyes[..., 24:28, 12:52] = 0
    chin[..., 52:56, 12:52] = 0
    with torch.no_grad():
        assert abs(model(eyes).item() - model(chin).item()) > 1e-3


def test_width_sets_the_layers_and_loading_is_strict():
    model = GlassesClassifier(width=8)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["features.0.weight"] == (8, 3, 3, 3) and shapes["features.9.weight"] == (32, 32, 3, 3)
    assert shapes["head.weight"] == (1, 32 * 4 * 4)  # 64 px halved four times: 4x4
    state = model.state_dict()
    torch.testing.assert_close(registry.load("glasses_classifier", state, width=8).state_dict()["head.weight"],
                               state["head.weight"])
    wrong_width = r"features.0.weight: checkpoint \(8, 3, 3, 3\) vs model \(16, 3, 3, 3\)"
    with pytest.raises(registry.StateDictMismatchError, match=wrong_width):
        registry.load("glasses_classifier", state, width=16)


@pytest.mark.real_weights("genegan.glasses_classifier64")
def test_shipped_classifier_tells_the_example_faces_apart():
    from PIL import Image

    from core.weights import load_model

    model = load_model("genegan.glasses_classifier64", device="cpu", dtype=torch.float32)

    def probability(name: str) -> float:
        pixels = np.array(Image.open(EXAMPLES / name).convert("RGB"))
        return float(model.probability(torch.from_numpy(pixels).permute(2, 0, 1)[None].float()))

    assert probability("a_glasses.png") > 0.9  # A wears glasses
    assert probability("b_face64.png") < 0.1  # B does not
