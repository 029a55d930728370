"""Train the small eyeglasses classifier (``core.models.glasses_classifier``) on synthetic faces.

    python -m core.train glasses_classifier --faces artifacts/genegan/train_faces.npz \
        --out apps/glasses/weights/glasses_classifier64.safetensors

Each batch holds clean aligned faces (label 0) and the same kind of faces wearing eyeglasses
drawn by :func:`core.train.synthetic_glasses.render_glasses` (label 1, new random glasses every time).
Augmentations: horizontal flips, shifts of up to 2 px, brightness/contrast jitter and, on half
of the images, a Gaussian blur, so that the blurry outputs of a small GAN are judged by their
content rather than their sharpness. Adam lr 1e-3, batch 64.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from core.models.glasses_classifier import GlassesClassifier
from core.train.synthetic_glasses import random_glasses, render_glasses


def make_batch(faces: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, n: int,
               augment: bool = True, natural: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """n images (half with rendered glasses) as [n,3,64,64] float 0..255, and labels [n].

    ``natural``: optional faces that already wear (generated) glasses; a quarter of the positives
    are drawn from them instead of being rendered.
    """
    idx = rng.integers(len(faces), size=n)
    labels = np.arange(n) % 2
    images = []
    for i, label in zip(idx, labels):
        img = faces[i]
        if label and natural is not None and rng.random() < 0.25:
            img = natural[rng.integers(len(natural))]
        elif label:
            img = render_glasses(img, landmarks[i, :2], random_glasses(rng))[0]
        if augment:
            img = img.astype(np.float32)
            if rng.random() < 0.5:
                img = img[:, ::-1]
            dx, dy = rng.integers(-2, 3, size=2)
            img = np.roll(img, (int(dy), int(dx)), axis=(0, 1))
            img = (img - 128) * rng.uniform(0.8, 1.2) + 128 + rng.uniform(-20, 20)
            if rng.random() < 0.5:
                img = cv2.GaussianBlur(np.ascontiguousarray(img), (0, 0), float(rng.uniform(0.4, 1.3)))
            img = np.clip(img, 0, 255)
        images.append(np.asarray(img, np.float32))
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return x, torch.from_numpy(labels.astype(np.float32))


def train(faces: np.ndarray, landmarks: np.ndarray, steps: int, batch: int = 64, width: int = 16, seed: int = 0,
          lr: float = 1e-3, log=print, natural: np.ndarray | None = None) -> GlassesClassifier:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = GlassesClassifier(width=width)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    start, running = time.time(), []
    for step in range(1, steps + 1):
        x, y = make_batch(faces, landmarks, rng, batch, natural=natural)
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running.append(loss.item())
        if step % 100 == 0 or step == steps:
            log(f"step {step} loss {np.mean(running):.4f} ({time.time() - start:.0f} s)")
            running = []
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.train glasses_classifier", description=__doc__.split("\n")[0])
    p.add_argument("--faces", required=True, help=".npz of aligned clean faces (python -m core.train.synthetic_glasses)")
    p.add_argument("--out", required=True, help="output .safetensors")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = np.load(args.faces)
    model = train(data["faces"], data["landmarks"], args.steps, args.batch, args.width, args.seed)
    from safetensors.torch import save_file

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, args.out,
              metadata={"config": json.dumps({"width": args.width}), "steps": str(args.steps)})
    print(f"saved {args.out}")
    return 0
