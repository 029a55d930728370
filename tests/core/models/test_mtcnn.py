"""MTCNN's networks against a functional re-statement, strict loading, and the cascade's pieces."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import core.models
from core.models import mtcnn

# Keys and shapes of facenet-pytorch 2.6.0's data/{pnet,rnet,onet}.pt (read from the wheel).
PUBLISHED = {
    "mtcnn_pnet": {"conv1.weight": (10, 3, 3, 3), "conv1.bias": (10,), "prelu1.weight": (10,),
                   "conv2.weight": (16, 10, 3, 3), "conv2.bias": (16,), "prelu2.weight": (16,),
                   "conv3.weight": (32, 16, 3, 3), "conv3.bias": (32,), "prelu3.weight": (32,),
                   "conv4_1.weight": (2, 32, 1, 1), "conv4_1.bias": (2,), "conv4_2.weight": (4, 32, 1, 1),
                   "conv4_2.bias": (4,)},
    "mtcnn_rnet": {"conv1.weight": (28, 3, 3, 3), "conv1.bias": (28,), "prelu1.weight": (28,),
                   "conv2.weight": (48, 28, 3, 3), "conv2.bias": (48,), "prelu2.weight": (48,),
                   "conv3.weight": (64, 48, 2, 2), "conv3.bias": (64,), "prelu3.weight": (64,),
                   "dense4.weight": (128, 576), "dense4.bias": (128,), "prelu4.weight": (128,),
                   "dense5_1.weight": (2, 128), "dense5_1.bias": (2,), "dense5_2.weight": (4, 128),
                   "dense5_2.bias": (4,)},
    "mtcnn_onet": {"conv1.weight": (32, 3, 3, 3), "conv1.bias": (32,), "prelu1.weight": (32,),
                   "conv2.weight": (64, 32, 3, 3), "conv2.bias": (64,), "prelu2.weight": (64,),
                   "conv3.weight": (64, 64, 3, 3), "conv3.bias": (64,), "prelu3.weight": (64,),
                   "conv4.weight": (128, 64, 2, 2), "conv4.bias": (128,), "prelu4.weight": (128,),
                   "dense5.weight": (256, 1152), "dense5.bias": (256,), "prelu5.weight": (256,),
                   "dense6_1.weight": (2, 256), "dense6_1.bias": (2,), "dense6_2.weight": (4, 256),
                   "dense6_2.bias": (4,), "dense6_3.weight": (10, 256), "dense6_3.bias": (10,)},
}


def random_state(arch: str) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(len(arch))
    return {k: torch.randn(shape, generator=generator) * 0.3 for k, shape in PUBLISHED[arch].items()}


def reference_forward(arch: str, s: dict[str, torch.Tensor], x: torch.Tensor):
    """The three networks written out with functional ops; dense layers see (W, H, C)-ordered maps."""
    def conv(x, name, pool=None):
        x = F.prelu(F.conv2d(x, s[f"conv{name}.weight"], s[f"conv{name}.bias"]), s[f"prelu{name}.weight"])
        return x if pool is None else F.max_pool2d(x, pool[0], pool[1], ceil_mode=True)

    def dense(x, name):
        return F.linear(x, s[f"dense{name}.weight"], s[f"dense{name}.bias"])

    if arch == "mtcnn_pnet":
        x = conv(conv(conv(x, 1, (2, 2)), 2), 3)
        logits = F.conv2d(x, s["conv4_1.weight"], s["conv4_1.bias"])
        return F.conv2d(x, s["conv4_2.weight"], s["conv4_2.bias"]), logits.softmax(1)[:, 1]
    if arch == "mtcnn_rnet":
        x = conv(conv(conv(x, 1, (3, 2)), 2, (3, 2)), 3).permute(0, 3, 2, 1).flatten(1)
        x = F.prelu(dense(x, 4), s["prelu4.weight"])
        return dense(x, "5_2"), dense(x, "5_1").softmax(1)[:, 1]
    x = conv(conv(conv(conv(x, 1, (3, 2)), 2, (3, 2)), 3, (2, 2)), 4).permute(0, 3, 2, 1).flatten(1)
    x = F.prelu(dense(x, 5), s["prelu5.weight"])
    return dense(x, "6_2"), dense(x, "6_3"), dense(x, "6_1").softmax(1)[:, 1]


@pytest.mark.parametrize("arch", sorted(PUBLISHED))
def test_networks_have_the_published_keys(arch):
    own = {k: tuple(v.shape) for k, v in core.models.build(arch).state_dict().items()}
    assert own == PUBLISHED[arch]


@pytest.mark.parametrize("arch, size", [("mtcnn_pnet", 31), ("mtcnn_rnet", 24), ("mtcnn_onet", 48)])
def test_forward_equals_the_functional_reference(arch, size):
    state = random_state(arch)
    model = core.models.load(arch, state)
    x = torch.rand(3, 3, size, size + (7 if arch == "mtcnn_pnet" else 0)) * 2 - 1
    for got, want in zip(model(x), reference_forward(arch, state, x), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert not model.training


def test_loading_is_strict():
    state = random_state("mtcnn_rnet")
    with pytest.raises(core.models.StateDictMismatchError, match="missing key.*prelu4.weight"):
        core.models.load("mtcnn_rnet", {k: v for k, v in state.items() if k != "prelu4.weight"})
    with pytest.raises(core.models.StateDictMismatchError, match="unexpected key.*dense6_3.weight"):
        core.models.load("mtcnn_rnet", {**state, "dense6_3.weight": torch.zeros(10, 128)})


def test_nms_by_union_and_by_smaller_box():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 4, 4.0]])
    scores = torch.tensor([0.9, 0.95, 0.5, 0.8])
    # IoU of boxes 0 and 1: 90 / 110 = 0.82; box 3 inside box 0 has IoU 0.16 but overlaps 100 % of itself.
    assert mtcnn.nms(boxes, scores, 0.7).tolist() == [1, 3, 2]
    assert mtcnn.nms(boxes, scores, 0.85).tolist() == [1, 0, 3, 2]
    assert mtcnn.nms(boxes, scores, 0.7, overlap="min").tolist() == [1, 2]
    assert mtcnn.nms(boxes[:0], scores[:0], 0.5).tolist() == []


def test_pyramid_and_proposal_geometry():
    scales = mtcnn.pyramid_scales(512, 600, min_face_size=20)
    assert scales[0] == pytest.approx(0.6) and len(scales) == 10  # 512 * 0.6 * 0.709**9 = 13.9 >= 12 > 9.9
    np.testing.assert_allclose(np.diff(np.log(scales)), np.log(0.709))
    probability = torch.zeros(5, 6)
    probability[2, 4] = 0.9  # row 2, column 4 of the P-Net map
    offsets = torch.arange(4.0)[:, None, None].expand(4, 5, 6)
    [row] = mtcnn._proposals(offsets, probability, scale=0.5, threshold=0.6).tolist()
    # The cell's 12 px window at stride 2, in image pixels: (2 * 4 + 1) / 0.5 = 18 ... (2 * 4 + 12) / 0.5 = 40.
    assert row == pytest.approx([18, 10, 40, 32, 0.9, 0, 1, 2, 3])


def test_box_regression_squares_and_crops():
    box = torch.tensor([[10.0, 20.0, 29.0, 59.0]])  # 20 x 40 px inclusive
    moved = mtcnn._regress(box, torch.tensor([[0.1, -0.1, 0.0, 0.5]]))
    assert moved[0].tolist() == pytest.approx([12.0, 16.0, 29.0, 79.0])
    assert mtcnn._squared(box).tolist() == [[0.0, 20.0, 39.0, 59.0]]
    image = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)[0]
    batch, valid = mtcnn._crops(image, torch.tensor([[2.7, 1.0, 5.0, 4.9], [20.0, 20, 30, 30]]), 3)
    assert valid.tolist() == [True, False] and batch.shape == (1, 3, 3, 3)
    # Truncated to whole pixels with MTCNN's 1-based corners: rows 0..3, columns 1..4 of the image.
    expected = (F.interpolate(image[None, :, 0:4, 1:5], size=(3, 3), mode="area") - 127.5) * 0.0078125
    torch.testing.assert_close(batch, expected)


def test_empty_image_gives_no_faces():
    nets = [core.models.load(arch, random_state(arch)) for arch in ("mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet")]
    boxes, scores, points = mtcnn.detect(*nets, torch.zeros(3, 11, 40))  # below P-Net's 12 px window
    assert boxes.shape == (0, 4) and scores.shape == (0,) and points.shape == (0, 5, 2)
    offsets, marks, probability = mtcnn._run_batched(nets[2], torch.zeros(0, 3, 48, 48))  # every crop was empty
    assert offsets.shape == (0, 4) and marks.shape == (0, 10) and probability.shape == (0,)
