"""MTCNN (Zhang et al., 2016): three cascaded CNNs that find faces and their five landmarks.

The networks follow facenet-pytorch's port of the original Caffe models (the checkpoint keys
``conv1``, ``prelu1``, ``dense4`` ... are theirs). Inputs are RGB in [-1, 1], i.e.
``(pixel - 127.5) / 128``. The dense layers of R-Net and O-Net were trained on feature maps
flattened in (width, height, channel) order, so the maps are transposed before flattening.

:func:`detect` is the cascade of the reference implementation: an image pyramid with scale
factor 0.709 from ``12 / min_face_size`` down, P-Net candidates at face probability >= 0.6,
non-maximum suppression (IoU 0.5 per scale, then 0.7), box regression, squared boxes, R-Net
(> 0.7, IoU 0.7), O-Net (> 0.7) with landmarks, and a last suppression by intersection over the
smaller box (0.7). Crops are resized with area averaging and batched through R-Net and O-Net.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PYRAMID_FACTOR = 0.709
THRESHOLDS = (0.6, 0.7, 0.7)
_CELL, _STRIDE = 12, 2  # P-Net's receptive field and output stride in pyramid pixels


def _conv_prelu(c_in: int, c_out: int, kernel: int) -> tuple[nn.Conv2d, nn.PReLU]:
    return nn.Conv2d(c_in, c_out, kernel), nn.PReLU(c_out)


class PNet(nn.Module):
    """Fully convolutional proposal net: per 12x12 window (stride 2) box offsets and face probability."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = _conv_prelu(3, 10, 3)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = _conv_prelu(10, 16, 3)
        self.conv3, self.prelu3 = _conv_prelu(16, 32, 3)
        self.conv4_1 = nn.Conv2d(32, 2, 1)  # face / not-face logits
        self.conv4_2 = nn.Conv2d(32, 4, 1)  # box offsets

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (N, 3, H, W) in [-1, 1] -> offsets (N, 4, h, w), face probability (N, h, w)."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)[:, 1]


def _flatten_whc(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, W*H*C): the flattening order the converted dense weights expect."""
    return x.permute(0, 3, 2, 1).flatten(1)


class RNet(nn.Module):
    """Refinement net on 24x24 crops: box offsets (N, 4) and face probability (N,)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = _conv_prelu(3, 28, 3)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = _conv_prelu(28, 48, 3)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = _conv_prelu(48, 64, 2)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu4(self.dense4(_flatten_whc(self.prelu3(self.conv3(x)))))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)[:, 1]


class ONet(nn.Module):
    """Output net on 48x48 crops: box offsets (N, 4), landmarks (N, 10: x1..x5 then y1..y5, as
    fractions of the crop) and face probability (N,)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = _conv_prelu(3, 32, 3)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = _conv_prelu(32, 64, 3)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = _conv_prelu(64, 64, 3)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = _conv_prelu(64, 128, 2)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu5(self.dense5(_flatten_whc(self.prelu4(self.conv4(x)))))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)[:, 1]


# --- the cascade -------------------------------------------------------------------------------
def _normalise(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels - 127.5) * 0.0078125


def nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float, overlap: str = "iou") -> torch.Tensor:
    """Indices of the boxes (x1, y1, x2, y2) kept by greedy suppression, best score first.

    ``overlap="iou"``: intersection over union with areas (x2 - x1) * (y2 - y1);
    ``overlap="min"``: intersection over the smaller box, with inclusive pixel areas (+1), as in
    MTCNN's last stage. A box is dropped when its overlap with a kept one is above ``threshold``.
    Runs on the CPU (a short greedy loop over at most a few thousand boxes) for any device.
    """
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    b = boxes.detach().float().cpu().numpy()
    order = np.argsort(-scores.detach().float().cpu().numpy(), kind="stable")
    one = 1.0 if overlap == "min" else 0.0
    area = (b[:, 2] - b[:, 0] + one) * (b[:, 3] - b[:, 1] + one)
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        w = np.maximum(0.0, np.minimum(b[best, 2], b[rest, 2]) - np.maximum(b[best, 0], b[rest, 0]) + one)
        h = np.maximum(0.0, np.minimum(b[best, 3], b[rest, 3]) - np.maximum(b[best, 1], b[rest, 1]) + one)
        inter = w * h
        if overlap == "min":
            ratio = inter / np.minimum(area[best], area[rest])
        else:
            ratio = inter / (area[best] + area[rest] - inter)
        order = rest[ratio <= threshold]
    return torch.as_tensor(np.array(keep), dtype=torch.long, device=boxes.device)


def pyramid_scales(height: int, width: int, min_face_size: float, factor: float = PYRAMID_FACTOR) -> list[float]:
    """Scales at which P-Net's 12 px window sees faces from ``min_face_size`` px up to the image size."""
    scale, side, scales = _CELL / min_face_size, min(height, width) * _CELL / min_face_size, []
    while side >= _CELL:
        scales.append(scale)
        scale, side = scale * factor, side * factor
    return scales


def _proposals(offsets: torch.Tensor, probability: torch.Tensor, scale: float, threshold: float) -> torch.Tensor:
    """P-Net cells at or above ``threshold`` as rows (x1, y1, x2, y2, score, 4 offsets) in image pixels."""
    ys, xs = torch.nonzero(probability >= threshold, as_tuple=True)
    cells = torch.stack([xs, ys], dim=1).to(offsets.dtype)
    top_left = torch.floor((_STRIDE * cells + 1) / scale)
    bottom_right = torch.floor((_STRIDE * cells + _CELL) / scale)
    return torch.cat([top_left, bottom_right, probability[ys, xs][:, None], offsets[:, ys, xs].T], dim=1)


def _squared(boxes: torch.Tensor) -> torch.Tensor:
    """Boxes grown to squares of their longer side around the same centre."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    x1, y1 = boxes[:, 0] + (w - side) / 2, boxes[:, 1] + (h - side) / 2
    return torch.stack([x1, y1, x1 + side, y1 + side], dim=1)


def _regress(boxes: torch.Tensor, offsets: torch.Tensor, inclusive: bool = True) -> torch.Tensor:
    """Boxes moved by offsets in units of their (inclusive, +1 px) width and height."""
    extra = 1.0 if inclusive else 0.0
    size = torch.stack([boxes[:, 2] - boxes[:, 0] + extra, boxes[:, 3] - boxes[:, 1] + extra], dim=1).repeat(1, 2)
    return boxes + offsets * size


def _crops(image: torch.Tensor, boxes: torch.Tensor, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each box's pixels (truncated to whole pixels, clipped to the image) resized to side x side
    by area averaging, normalised; and which boxes had a non-empty crop.

    The same bins as ``F.interpolate(mode="area")`` on each crop (output pixel i averages input
    rows floor(i * h / side) to ceil((i + 1) * h / side)), for all crops at once from one
    summed-area table in float64 (exact for 8-bit pixel values).
    """
    height, width = image.shape[-2:]
    corners = boxes.trunc().long()
    x1, y1 = corners[:, 0].clamp(min=1) - 1, corners[:, 1].clamp(min=1) - 1
    x2, y2 = corners[:, 2].clamp(max=width), corners[:, 3].clamp(max=height)
    valid = (x2 > x1) & (y2 > y1)
    x1, y1, x2, y2 = x1[valid], y1[valid], x2[valid], y2[valid]
    steps = torch.arange(side + 1, device=image.device)

    def bins(low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        length = (high - low)[:, None]
        start = low[:, None] + steps[:-1] * length // side
        stop = low[:, None] + -(-(steps[1:] * length) // side)  # ceiling division
        return start, stop

    (top, bottom), (left, right) = bins(y1, y2), bins(x1, x2)
    table = F.pad(image.double().cumsum(1).cumsum(2), (1, 0, 1, 0))  # table[:, y, x] = sum of image[:, :y, :x]

    def at(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        return table[:, rows[:, :, None], cols[:, None, :]]  # (3, n, side, side)

    sums = at(bottom, right) - at(top, right) - at(bottom, left) + at(top, left)
    area = (bottom - top)[:, :, None] * (right - left)[:, None, :]
    batch = (sums / area).to(image.dtype).permute(1, 0, 2, 3).contiguous()
    return _normalise(batch), valid


def _run_batched(net: nn.Module, batch: torch.Tensor, chunk: int = 512) -> tuple[torch.Tensor, ...]:
    outputs = [net(batch[i:i + chunk]) for i in range(0, max(batch.shape[0], 1), chunk)]  # an empty batch too
    return tuple(torch.cat(parts) for parts in zip(*outputs))


@torch.no_grad()
def detect(pnet: PNet, rnet: RNet, onet: ONet, image: torch.Tensor, min_face_size: float = 20.0,
           thresholds: tuple[float, float, float] = THRESHOLDS, factor: float = PYRAMID_FACTOR
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Faces in one RGB image (3, H, W) with pixel values 0..255 on the networks' device and dtype.

    Returns boxes (n, 4) as x1, y1, x2, y2, face probabilities (n,) and landmarks (n, 5, 2) as
    (x, y) in image pixels, in O-Net's order (left eye, right eye, nose, left and right mouth
    corner, left/right as seen in the image); rows in the order of the last suppression.
    """
    height, width = image.shape[-2:]
    empty = image.new_zeros((0, 4)), image.new_zeros((0,)), image.new_zeros((0, 5, 2))
    found = []
    for scale in pyramid_scales(height, width, min_face_size, factor):
        level = F.interpolate(image[None], size=(int(height * scale + 1), int(width * scale + 1)), mode="area")
        offsets, probability = pnet(_normalise(level))
        candidates = _proposals(offsets[0], probability[0], scale, thresholds[0])
        found.append(candidates[nms(candidates[:, :4], candidates[:, 4], 0.5)])
    candidates = torch.cat(found) if found else image.new_zeros((0, 9))
    candidates = candidates[nms(candidates[:, :4], candidates[:, 4], 0.7)]
    boxes = _squared(_regress(candidates[:, :4], candidates[:, 5:], inclusive=False))

    if boxes.shape[0]:
        batch, valid = _crops(image, boxes, 24)
        boxes = boxes[valid]
        offsets, score = _run_batched(rnet, batch)
        passed = score > thresholds[1]
        boxes, score, offsets = boxes[passed], score[passed], offsets[passed]
        keep = nms(boxes, score, 0.7)
        boxes = _squared(_regress(boxes[keep], offsets[keep]))
    if not boxes.shape[0]:
        return empty

    batch, valid = _crops(image, boxes, 48)
    boxes = boxes[valid]
    offsets, marks, score = _run_batched(onet, batch)
    passed = score > thresholds[2]
    boxes, score, offsets, marks = boxes[passed], score[passed], offsets[passed], marks[passed]
    # Landmarks are fractions of the box O-Net saw, in the inclusive-pixel convention (origin at x1 - 1).
    size = (boxes[:, 2:] - boxes[:, :2] + 1)[:, None, :]
    origin = (boxes[:, :2] - 1)[:, None, :]
    points = torch.stack([marks[:, :5], marks[:, 5:]], dim=2) * size + origin
    boxes = _regress(boxes, offsets)
    keep = nms(boxes, score, 0.7, overlap="min")
    return boxes[keep], score[keep], points[keep]


@torch.no_grad()
def mirrored_scores(onet: ONet, image: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """O-Net's face probability for each box's square crop mirrored left-right.

    Not part of MTCNN: a check added by this project. A face stays a face in a mirror, so its
    score stays high; the objects MTCNN mistakes for faces (a wheel, a paw) are rarely symmetric
    in the way a face is and score low. Boxes with an empty crop score 0.
    """
    scores = image.new_zeros(boxes.shape[0])
    if boxes.shape[0]:
        batch, valid = _crops(image, _squared(boxes), 48)
        if batch.shape[0]:
            scores[valid] = _run_batched(onet, batch.flip(-1))[2]
    return scores
