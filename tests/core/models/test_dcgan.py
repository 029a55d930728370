import json

import pytest
import torch

import core.models
from core import weights
from tests.conftest import SPECS_DIR


def reference_forward(state, z):
    """The tutorial generator written out with functional ops (eval-mode BatchNorm)."""
    x = z
    for conv, bn in ((0, 1), (3, 4), (6, 7), (9, 10)):
        stride, pad = (1, 0) if conv == 0 else (2, 1)
        x = torch.nn.functional.conv_transpose2d(x, state[f"main.{conv}.weight"], stride=stride, padding=pad)
        x = torch.nn.functional.batch_norm(x, state[f"main.{bn}.running_mean"], state[f"main.{bn}.running_var"],
                                           state[f"main.{bn}.weight"], state[f"main.{bn}.bias"], False, 0.0, 1e-5)
        x = torch.relu(x)
    return torch.tanh(torch.nn.functional.conv_transpose2d(x, state["main.12.weight"], stride=2, padding=1))


def test_full_size_model_has_exactly_the_published_keys():
    spec = json.loads((SPECS_DIR / "dcgan64.json").read_text())
    model = core.models.build("dcgan", **{k: spec["config"][k] for k in ("nz", "ngf", "nc")})
    own = [(k, list(v.shape), str(v.dtype).replace("torch.", "")) for k, v in model.state_dict().items()]
    assert own == [(key, shape, dtype) for key, shape, dtype in spec["state_dict"]]
    assert sum(p.numel() for p in model.parameters()) == spec["params"]


def test_forward_equals_reference_on_tiny_weights():
    torch.manual_seed(0)
    model = core.models.build("dcgan", nz=8, ngf=4)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for key in state:  # non-trivial BatchNorm statistics
        if key.endswith(("running_mean", "running_var")):
            state[key] = torch.rand_like(state[key]) + (0.5 if key.endswith("var") else -0.5)
    model = core.models.load("dcgan", state, nz=8, ngf=4)
    z = torch.randn(3, 8, 1, 1)
    out = model(z)
    assert out.shape == (3, 3, 64, 64)
    torch.testing.assert_close(out, reference_forward(state, z), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model(z.flatten(1)), out)  # a flat [N, nz] latent is accepted
    assert not model.training


def test_dataparallel_prefix_is_accepted():
    state = core.models.build("dcgan", nz=8, ngf=4).state_dict()
    model = core.models.load("dcgan", {f"module.{k}": v for k, v in state.items()}, nz=8, ngf=4)
    assert torch.equal(model.main[0].weight, state["main.0.weight"])


def test_unknown_architecture_lists_the_known_ones():
    with pytest.raises(ValueError, match="Known architectures: .*dcgan"):
        core.models.build("biggan")


def faces_found(images) -> int:
    from core import faces
    from core.images import to_pil

    return sum(bool(faces.detect_faces(to_pil(image))) for image in images)


@pytest.mark.real_weights("dcgan.faces64")
def test_offline_weights_make_faces():
    model = weights.load_model("dcgan.faces64", device="cpu")
    z = torch.randn(16, 100, 1, 1, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        samples = model(z)
        random_samples = core.models.build("dcgan").eval()(z)
    assert samples.shape == (16, 3, 64, 64)
    assert -1 <= samples.min() and samples.max() <= 1
    # Trained faces use the whole range and are spatially smooth; a face detector finds them.
    assert samples.std() > 0.3
    neighbours = torch.nn.functional.cosine_similarity(
        samples[..., 1:, :].flatten(1) - samples.mean(), samples[..., :-1, :].flatten(1) - samples.mean()).mean()
    assert neighbours > 0.9
    assert faces_found(samples) >= 14
    assert faces_found(random_samples) == 0
