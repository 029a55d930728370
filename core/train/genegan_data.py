"""The data GeneGAN trains on (:mod:`core.train.genegan`): pairs of 64x64 faces with and without an attribute.

Data (every image becomes a 64x64 RGB uint8 array, loaded into memory once):

- ``--celeba DIR``: the CelebA layout, ``DIR/img_align_celeba/*.jpg`` + ``DIR/list_attr_celeba.txt``;
  ``Ax`` = images whose ``--attribute`` is 1, ``Be`` = those with -1. With
  ``DIR/list_landmarks_align_celeba.txt`` the faces are aligned on the 5 landmarks with a
  similarity transform (as upstream ``preprocess.py``) to ``--template`` (default ``glasses``, the
  layout the app aligns photos to; ``celeba`` = upstream's mean face); without it, the central
  178x178 square is used. The prepared arrays are cached in ``--out/data_<attribute>.npz``.
- ``--with-dir`` / ``--without-dir``: any two folders of images with / without the attribute
  (``--align`` detects and aligns each face with :mod:`core.faces`; otherwise they are resized).
- ``--synthetic FILE.npz`` (from ``python -m core.train.synthetic_glasses``): DCGAN faces; ``Ax`` get
  eyeglasses drawn on the fly by :func:`core.train.synthetic_glasses.render_glasses` (a new random
  pair every time), ``Be`` are the clean faces.

Every source gives batches through ``batch(step, n) -> (Ax, Be)``, float [n, 3, H, W] in 0..255,
drawn from a generator seeded by ``step`` so that a resumed run sees the same data.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.train.synthetic_glasses import random_glasses, render_glasses
from core.weights import face_layout

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def _to64(image: Image.Image, size: int) -> np.ndarray:
    return np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR))


def _celeba_template(name: str) -> np.ndarray:
    from core.faces import CELEBA_TEMPLATE

    return face_layout("dcgan_faces64_symmetric") if name == "glasses" else CELEBA_TEMPLATE


def _align_points(rgb: np.ndarray, points: np.ndarray, size: int, template: np.ndarray) -> np.ndarray:
    import cv2

    matrix, _ = cv2.estimateAffinePartial2D(points.astype(np.float32), (template * size).astype(np.float32),
                                            method=cv2.LMEDS)
    # Warp at 4x the target size, then area-downsample: less aliasing than one small warp.
    big = cv2.warpAffine(rgb, matrix * 4, (size * 4, size * 4), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)


def _celeba_item(job: tuple[str, np.ndarray | None, int, str]) -> np.ndarray:
    path, points, size, template = job
    rgb = np.asarray(Image.open(path).convert("RGB"))
    if points is None:  # img_align_celeba is 178x218; its central square holds the face
        top = (rgb.shape[0] - rgb.shape[1]) // 2
        return _to64(Image.fromarray(rgb[top: top + rgb.shape[1]]), size)
    return _align_points(rgb, points, size, _celeba_template(template))


def load_celeba(root: str | Path, attribute: str, size: int, template: str, cache: Path, workers: int,
                log=print) -> tuple[np.ndarray, np.ndarray]:
    """(images with the attribute, images without) from the CelebA layout; cached as .npz."""
    if cache.exists():
        data = np.load(cache)
        return data["with_attr"], data["without_attr"]
    root = Path(root)
    lines = (root / "list_attr_celeba.txt").read_text().splitlines()
    names = lines[1].split()
    if attribute not in names:
        raise ValueError(f"Attribute {attribute!r} is not in list_attr_celeba.txt ({', '.join(names)}).")
    column = names.index(attribute)
    labels = {parts[0]: int(parts[1 + column]) for parts in (line.split() for line in lines[2:]) if parts}
    landmarks: dict[str, np.ndarray] = {}
    marks_file = root / "list_landmarks_align_celeba.txt"
    if marks_file.exists():
        for line in marks_file.read_text().splitlines()[2:]:
            parts = line.split()
            if parts:
                landmarks[parts[0]] = np.array(parts[1:11], float).reshape(5, 2)
    log(f"CelebA: {len(labels)} images, attribute {attribute}, "
        f"{'5-landmark alignment to ' + template if landmarks else 'central crop (no landmark file)'}")
    jobs = [(str(root / "img_align_celeba" / name), landmarks.get(name), size, template) for name in sorted(labels)]
    if workers > 1:
        from multiprocessing import Pool

        with Pool(workers) as pool:
            images = pool.map(_celeba_item, jobs, chunksize=256)
    else:
        images = [_celeba_item(job) for job in jobs]
    images = np.stack(images)
    flags = np.array([labels[name] == 1 for name in sorted(labels)])
    np.savez(cache, with_attr=images[flags], without_attr=images[~flags])
    return images[flags], images[~flags]


def load_folder(folder: str | Path, size: int, align: bool) -> np.ndarray:
    """Every image in ``folder`` as [N, size, size, 3] uint8 (aligned with core.faces if ``align``)."""
    from core.faces import align_face, detect_faces

    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"No images ({', '.join(IMAGE_SUFFIXES)}) in {folder}.")
    images = []
    for path in paths:
        image = Image.open(path).convert("RGB")
        if align:
            faces = detect_faces(image)
            if not faces:
                continue
            image = align_face(image, faces[0], size, template=face_layout("dcgan_faces64_symmetric")).image
        images.append(_to64(image, size))
    return np.stack(images)


class ArrayPairs:
    """Random batches of (with attribute, without) from two uint8 arrays; batch ``step`` is seeded by step."""

    def __init__(self, with_attr: np.ndarray, without_attr: np.ndarray, seed: int, flip: bool = True):
        if len(with_attr) == 0 or len(without_attr) == 0:
            raise ValueError("Both the 'with' and the 'without' sets need at least one image.")
        self.with_attr, self.without_attr, self.seed, self.flip = with_attr, without_attr, seed, flip

    def batch(self, step: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step])
        ax = self.with_attr[rng.integers(len(self.with_attr), size=n)]
        be = self.without_attr[rng.integers(len(self.without_attr), size=n)]
        return _flip_and_tensor(ax, rng, self.flip), _flip_and_tensor(be, rng, self.flip)


class SyntheticPairs:
    """DCGAN faces from an .npz: ``Ax`` wear freshly rendered eyeglasses, ``Be`` are clean faces."""

    def __init__(self, path: str | Path, seed: int, flip: bool = True):
        data = np.load(path)
        self.faces, self.landmarks = data["faces"], data["landmarks"]
        self.seed, self.flip = seed, flip

    def batch(self, step: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step])
        ia, ib = rng.integers(len(self.faces), size=n), rng.integers(len(self.faces), size=n)
        ax = np.stack([render_glasses(self.faces[i], self.landmarks[i, :2], random_glasses(rng))[0] for i in ia])
        return _flip_and_tensor(ax, rng, self.flip), _flip_and_tensor(self.faces[ib], rng, self.flip)


def _flip_and_tensor(images: np.ndarray, rng: np.random.Generator, flip: bool) -> torch.Tensor:
    images = images.copy()
    if flip:
        mirror = rng.random(len(images)) < 0.5
        images[mirror] = images[mirror, :, ::-1]
    return torch.from_numpy(images).permute(0, 3, 1, 2).float()


def make_data(args: argparse.Namespace, out: Path, log):
    chosen = [bool(args.celeba), bool(args.with_dir or args.without_dir), bool(args.synthetic)]
    if sum(chosen) != 1:
        raise ValueError("Give exactly one data source: --celeba, --with-dir/--without-dir or --synthetic.")
    flip = not args.no_flip
    if args.synthetic:
        return SyntheticPairs(args.synthetic, args.seed, flip)
    if args.celeba:
        with_attr, without_attr = load_celeba(args.celeba, args.attribute, args.size, args.template,
                                              out / f"data_{args.attribute}_{args.template}.npz", args.workers, log)
    else:
        if not (args.with_dir and args.without_dir):
            raise ValueError("--with-dir and --without-dir go together.")
        with_attr = load_folder(args.with_dir, args.size, args.align)
        without_attr = load_folder(args.without_dir, args.size, args.align)
    log(f"data: {len(with_attr)} with, {len(without_attr)} without")
    return ArrayPairs(with_attr, without_attr, args.seed, flip)
