"""Arithmetic: slide a face along an attribute direction (the mean latent of measured faces with the
attribute minus that of faces without, :mod:`core.pipelines.latent.attributes`), each frame measured again."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from core.pipelines.latent import attributes as attrs
from core.pipelines.latent import lab
from core.pipelines.latent import space as lat

MAX_STEPS = 11


@dataclass(frozen=True)
class Settings:
    model_id: str = field(default_factory=lab.default_generator)
    attribute: str = "eyeglasses"
    alpha: float = 2.0  # the slide goes from -alpha to +alpha
    steps: int = 7  # frames
    space: str = "z"
    psi: float = 1.0

    def __post_init__(self):
        lab.check_generator(self.model_id)
        if not 1 <= self.steps <= MAX_STEPS:
            raise ValueError(f"The number of frames must be between 1 and {MAX_STEPS}, got {self.steps}.")


@dataclass(frozen=True)
class Result:
    images: list[Image.Image]
    captions: list[str]  # each frame's alpha and measurement
    notes: str
    details: dict


def run(source: lab.LatentSource, settings: Settings | None = None, *, model=None, classifier=None,
        shipped: dict[str, Path] | None = None) -> Result:
    """``shipped``: generator id -> a directions file (:func:`attributes.save_directions`); without one
    the directions are computed from :data:`lab.ON_DEMAND_SAMPLES` faces, once."""
    settings = settings or Settings()
    gen = lab.generator(settings.model_id, model)
    space, psi = settings.space, settings.psi
    classifier = classifier if classifier is not None else lab.load_float32(lab.role("classifier"))
    directions, info = lab.directions_for(gen, shipped, space, psi, classifier)
    lab.check_attribute(settings.attribute, directions)
    start, what = lab.latent_of(gen, source, space, psi)
    alpha, steps = settings.alpha, int(settings.steps)
    alphas = np.linspace(-alpha, alpha, steps) if steps > 1 else np.array([alpha])
    images = lat.to_uint8(gen.decode(lat.along(start, directions[settings.attribute], alphas), space, psi))
    faces = images if gen.size == 64 else np.stack([np.asarray(Image.fromarray(i).resize((256, 256))) for i in images])
    scores = attrs.measure(faces, classifier)[settings.attribute]
    unit = "P(glasses)" if settings.attribute == "eyeglasses" else settings.attribute
    captions = [f"alpha {a:+.2f}: {unit} " + ("no face" if np.isnan(s) else f"{s:.2f}") for a, s in zip(alphas, scores)]
    about = info.get("attributes", {}).get(settings.attribute, {})
    notes = (f"{what}, along **{settings.attribute}** (mean latent of {about.get('with', '?')} faces with it minus "
             f"that of {about.get('without', '?')} without, over {info.get('samples', '?')} samples).")
    details = {**vars(settings), "latent": what, "alphas": [float(a) for a in alphas],
               "measured": [None if np.isnan(s) else float(s) for s in scores]}
    return Result([Image.fromarray(i) for i in images], captions, notes, details)
