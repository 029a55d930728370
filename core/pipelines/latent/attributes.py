"""Face attributes the project can measure offline, and the latent directions computed from them.

Each generated face is found with :func:`core.faces.detect_faces` (5 landmarks) and aligned to
the manifest's ``dcgan_faces64_symmetric`` layout at 64 px (the mean layout of DCGAN faces). Then:

- ``eyeglasses``: P(glasses) from the project's classifier (the latent app's ``classifier`` in the manifest);
  a face has the attribute when P > 0.5;
- ``yaw``: head turn from the landmarks, (nose x - eye midpoint x) / eye distance (> 0: the nose
  points to the image's right);
- ``mouth_width``: mouth-corner distance / eye distance (wide smiles score high);
- ``hair_brightness`` / ``skin_brightness``: mean luma (BT.601, 0-255) of the aligned crop's
  hair region (top rows) and skin region (cheeks and forehead), :func:`region_mask`.

The continuous ones are split into top and bottom thirds (:func:`core.pipelines.latent.space.split_by_score`).
:func:`compute_directions` turns N samples into one direction per attribute; the command line
writes them to a small safetensors file (the app ships the DCGAN's)::

    python -m core.pipelines.latent.attributes --model dcgan.faces64 --samples 3000 --seed 1000000 \
        --out apps/latent/data/directions_dcgan_faces64.safetensors
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from core.pipelines.latent.space import LatentGenerator, attribute_direction, split_by_score, to_uint8

ATTRIBUTES = ("eyeglasses", "yaw", "mouth_width", "hair_brightness", "skin_brightness")
THRESHOLDS = {"eyeglasses": 0.5}  # binary attributes; the others are split into thirds
REGIONS = {  # in the aligned 64 px crop: (y0, y1, x0, x1) boxes
    "hair": [(0, 10, 12, 52)],
    "skin": [(34, 44, 12, 22), (34, 44, 42, 52), (14, 22, 24, 40)],
}
ATTRIBUTE_REGION = {"eyeglasses": "eye_band", "hair_brightness": "hair", "skin_brightness": "skin"}


def region_mask(name: str, size: int = 64) -> np.ndarray:
    """Boolean [size, size] mask of a named region of the aligned crop (``eye_band``, ``hair``, ``skin``)."""
    from core.pipelines.glasses.layout import eye_band

    if name == "eye_band":
        return eye_band(size)
    mask = np.zeros((64, 64), bool)
    for y0, y1, x0, x1 in REGIONS[name]:
        mask[y0:y1, x0:x1] = True
    if size != 64:
        mask = np.asarray(torch.nn.functional.interpolate(torch.from_numpy(mask)[None, None].float(), size=size)[0, 0]) > 0.5
    return mask


def luma(images: np.ndarray) -> np.ndarray:
    return images[..., 0] * 0.299 + images[..., 1] * 0.587 + images[..., 2] * 0.114


def measure(images: np.ndarray, classifier) -> dict[str, np.ndarray]:
    """Every attribute of every face (uint8 [N, H, W, 3]) -> name -> [N] (NaN where no face was found)."""
    from PIL import Image

    from core.faces import align_face, detect_faces
    from core.pipelines.glasses.layout import template

    n = len(images)
    out = {name: np.full(n, np.nan) for name in ATTRIBUTES}
    crops, found, layout = [], [], template()
    for i, image in enumerate(images):
        pil = Image.fromarray(image)
        faces = detect_faces(pil)
        if not faces:
            continue
        points = faces[0].points()
        eye_left, eye_right, nose, mouth_left, mouth_right = points
        eye_distance = max(np.hypot(*(eye_right - eye_left)), 1e-6)
        out["yaw"][i] = (nose[0] - (eye_left[0] + eye_right[0]) / 2) / eye_distance
        out["mouth_width"][i] = np.hypot(*(mouth_right - mouth_left)) / eye_distance
        crops.append(np.asarray(align_face(pil, faces[0], 64, template=layout).image))
        found.append(i)
    if not found:
        return out
    crops = np.stack(crops)
    p = next(classifier.parameters())
    with torch.no_grad():
        x = torch.from_numpy(crops).permute(0, 3, 1, 2).to(p.device, p.dtype)
        out["eyeglasses"][found] = classifier.probability(x).float().cpu().numpy()
    y = luma(crops.astype(np.float32))
    out["hair_brightness"][found] = y[:, region_mask("hair")].mean(1)
    out["skin_brightness"][found] = y[:, region_mask("skin")].mean(1)
    return out


def has_attribute(name: str, scores: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Whether each score counts as having the attribute: P > 0.5 for eyeglasses; above the median
    of ``reference`` (the scores the direction was computed from) for the continuous ones."""
    if name in THRESHOLDS:
        return np.asarray(scores) > THRESHOLDS[name]
    return np.asarray(scores) > np.nanmedian(reference if reference is not None else scores)


def compute_directions(gen: LatentGenerator, classifier, samples: int, seed: int, space: str = "z",
                       psi: float = 1.0, log=print) -> tuple[dict[str, torch.Tensor], dict]:
    """One direction per attribute from ``samples`` faces with seeds ``seed .. seed + samples - 1``.

    Returns (name -> direction [d], info) where info holds, per attribute, the class sizes and
    the median score (the "has it" boundary of the continuous attributes)."""
    started = time.perf_counter()
    z = gen.z_from_seeds(range(seed, seed + samples))
    latents = gen.to_w(z, psi) if space == "w" else z
    scores = {name: [] for name in ATTRIBUTES}
    for chunk in range(0, samples, 256):
        images = to_uint8(gen.decode(latents[chunk:chunk + 256], space, psi))
        if gen.size != 64:
            images = np.stack([np.asarray(_resized(image, 256)) for image in images])
        for name, values in measure(images, classifier).items():
            scores[name].append(values)
        log(f"measured {min(chunk + 256, samples)}/{samples} faces ({time.perf_counter() - started:.0f} s)")
    directions, info = {}, {"samples": samples, "seed": seed, "space": space, "psi": psi, "attributes": {}}
    for name in ATTRIBUTES:
        values = np.concatenate(scores[name])
        indices, labels = split_by_score(values, THRESHOLDS.get(name))
        directions[name] = attribute_direction(latents[indices], labels)
        info["attributes"][name] = {"with": int(labels.sum()), "without": int((~labels).sum()),
                                    "median": float(np.nanmedian(values)), "faces_found": int((~np.isnan(values)).sum()),
                                    "norm": float(directions[name].norm())}
    info["seconds"] = round(time.perf_counter() - started, 1)
    return directions, info


def _resized(image: np.ndarray, side: int):
    from PIL import Image

    return Image.fromarray(image).resize((side, side), Image.Resampling.LANCZOS)


def save_directions(path: str | Path, directions: dict[str, torch.Tensor], info: dict, model_id: str) -> None:
    from safetensors.torch import save_file

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.float().contiguous() for k, v in directions.items()}, str(path),
              metadata={"model": model_id, "info": json.dumps(info)})


def load_directions(path: str | Path, model_id: str) -> tuple[dict[str, torch.Tensor], dict]:
    """(name -> direction, info) from a file written by :func:`save_directions` for ``model_id``."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
        if meta.get("model") != model_id:
            raise ValueError(f"{path} holds directions of {meta.get('model')!r}, not {model_id!r}.")
        return {k: f.get_tensor(k) for k in f.keys()}, json.loads(meta.get("info", "{}"))


def main(argv: list[str] | None = None) -> int:
    from core.weights import load_model, model_for_role

    p = argparse.ArgumentParser(prog="python -m core.pipelines.latent.attributes", description=__doc__.split("\n")[0])
    p.add_argument("--model", default="dcgan.faces64")
    p.add_argument("--samples", type=int, default=3000)
    p.add_argument("--seed", type=int, default=1_000_000)
    p.add_argument("--space", default="z", choices=("z", "w"))
    p.add_argument("--psi", type=float, default=1.0)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    gen = LatentGenerator(load_model(args.model, dtype=torch.float32), args.model)
    classifier = load_model(model_for_role("latent", "classifier"), dtype=torch.float32)
    directions, info = compute_directions(gen, classifier, args.samples, args.seed, args.space, args.psi)
    save_directions(args.out, directions, info, args.model)
    print(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
