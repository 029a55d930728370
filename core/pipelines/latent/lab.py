"""What the latent lab's tasks share: the generators, latents from a seed or a file, output files.

Models come from the manifest (the latent app's ``generator``, ``encoder`` and ``classifier``
roles) through the shared cache, in float32; files handed to the user are written under
``$TMPDIR/ganhub-latent`` and deleted after an hour.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from core.pipelines.latent import attributes as attrs
from core.pipelines.latent import files
from core.pipelines.latent.space import LatentGenerator, to_uint8

APP = "latent"
# The smallest of alpha = 1, 1.5, 2 that flips at least 75% of held-out faces without the attribute
# (all but eyeglasses flip 77-94% at 1-1.5; eyeglasses 42% / 63% / 75%): apps/latent/README.md.
DEFAULT_ALPHA = {"eyeglasses": 2.0, "yaw": 1.0, "mouth_width": 1.5, "hair_brightness": 1.0, "skin_brightness": 1.0}
ON_DEMAND_SAMPLES = 300  # faces measured to compute a generator's directions when none are shipped
OUT_DIR = Path(tempfile.gettempdir()) / "ganhub-latent"
MAX_AGE_S = 3600


@dataclass(frozen=True)
class LatentSource:
    """Where a latent comes from: an uploaded file (``.safetensors`` / ``.npy``) if given, else a seed."""

    seed: int | None = None
    file: str | None = None


def generator_ids() -> list[str]:
    """The latent lab's generators, in manifest order (the first is the default)."""
    from core.weights import models_for_role

    return models_for_role(APP, "generator")


def role(name: str) -> str:
    """The manifest id of the latent lab's ``encoder`` or ``classifier``."""
    from core.weights import model_for_role

    return model_for_role(APP, name)


def default_generator() -> str:
    return generator_ids()[0]


def check_generator(model_id: str) -> None:
    if model_id not in generator_ids():
        raise ValueError(f"Unknown generator {model_id!r}; choose one of {', '.join(generator_ids())}.")


def out_path(name: str) -> Path:
    """A fresh path for a file handed to the user (older files of this folder are removed)."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in OUT_DIR.glob("*/*"):
        if now - old.stat().st_mtime > MAX_AGE_S:
            old.unlink(missing_ok=True)
            try:
                old.parent.rmdir()
            except OSError:
                pass
    folder = OUT_DIR / uuid.uuid4().hex[:12]
    folder.mkdir()
    return folder / name


def load_float32(model_id: str):
    """A model as the lab runs it (float32 on the default device), e.g. to preload it."""
    from core.weights import load_model

    return load_model(model_id, dtype=torch.float32)


def generator(model_id: str, model=None) -> LatentGenerator:
    """``model`` (a generator module or a :class:`LatentGenerator`) or the manifest's ``model_id``, cached."""
    from core.cache import MODEL_CACHE

    if isinstance(model, LatentGenerator):
        return model
    model = load_float32(model_id) if model is None else model
    key = (model_id, "latent_generator", id(model))
    return MODEL_CACHE.get_or_load(key, lambda: LatentGenerator(model, model_id), size=lambda g: 0)


def latent_of(gen: LatentGenerator, source: LatentSource, space: str = "z",
              psi: float = 1.0) -> tuple[torch.Tensor, str]:
    """The latent in ``space`` from ``source`` (its file if any, else its seed), and a short description."""
    gen.check_space(space)
    if source.file:
        upload = source.file
        loaded = files.load_latent(upload, gen, space if Path(upload).suffix.lower() == ".npy" else "z")
        name = Path(upload).name
        if loaded.space == space:
            return loaded.latent, f"{name} ({space})"
        if loaded.space == "w":
            raise ValueError(f"{name} is a W latent; it cannot be used in z (choose the W space).")
        return gen.to_w(loaded.latent[None], psi)[0], f"{name} (z, mapped to W at psi {psi:g})"
    if source.seed is None:
        raise ValueError("Give a seed or upload a latent file.")
    z = gen.z_from_seeds([int(source.seed)])
    return (gen.to_w(z, psi)[0] if space == "w" else z[0]), f"seed {int(source.seed)}"


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    return [Image.fromarray(a) for a in to_uint8(images)]


def directions_for(gen: LatentGenerator, shipped: dict[str, Path] | None, space: str = "z", psi: float = 1.0,
                   classifier=None):
    """(name -> direction, info): the shipped file of this generator, else computed once and cached."""
    from core.cache import MODEL_CACHE

    path = (shipped or {}).get(gen.model_id)
    if path is not None and space == "z" and Path(path).is_file():
        directions, info = attrs.load_directions(path, gen.model_id)
        if all(d.shape == (gen.nz,) for d in directions.values()):
            return directions, info
    classifier = classifier if classifier is not None else load_float32(role("classifier"))
    key = (gen.model_id, "latent_directions", id(gen.model), space, psi, ON_DEMAND_SAMPLES)
    return MODEL_CACHE.get_or_load(
        key, lambda: attrs.compute_directions(gen, classifier, ON_DEMAND_SAMPLES, 1_000_000, space, psi,
                                              log=lambda _: None), size=lambda _: 0)


def check_attribute(attribute: str, directions: dict) -> None:
    if attribute not in directions:
        raise ValueError(f"No {attribute!r} direction for this generator; choose one of {', '.join(directions)}.")
