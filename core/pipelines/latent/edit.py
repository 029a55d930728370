"""Edit a face photo through its latent: z (from a latent file, or inverted now) moved by alpha along an
attribute direction, and the change put back into the photo (:func:`core.pipelines.latent.inversion.edit_photo`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from core.pipelines.latent import invert, lab
from core.pipelines.latent import inversion as inv


@dataclass(frozen=True)
class Settings:
    model_id: str = field(default_factory=lab.default_generator)
    method: str = "hybrid"  # the inversion, when no latent file is given
    attribute: str = "eyeglasses"
    alpha: float = 2.0
    blend: str = "residual"  # or "direct"
    steps: int = 100  # optimisation steps of the inversion

    def __post_init__(self):
        lab.check_generator(self.model_id)
        inv.check_method(self.method)
        inv.check_blend(self.blend)


@dataclass(frozen=True)
class Result:
    image: Image.Image  # the edited photo, same size as the photo
    steps: list[tuple[Image.Image, str]]  # aligned face, G(z), G(z + alpha d), edited face
    notes: str
    details: dict


def run(photo: Image.Image | None, latent_file: str | None = None, settings: Settings | None = None, *,
        model=None, encoder=None, shipped: dict[str, Path] | None = None) -> Result:
    """``shipped``: generator id -> a directions file, as for :func:`core.pipelines.latent.direction.run`."""
    settings = settings or Settings()
    if photo is None:
        raise ValueError("Upload the photo to edit.")
    gen = lab.generator(settings.model_id, model)
    aligned = inv.align_photo(photo, gen)
    if latent_file:
        z, what = lab.latent_of(gen, lab.LatentSource(file=latent_file))
    else:
        inverted = invert.invert_aligned(gen, photo, aligned, invert.Settings(settings.model_id, settings.method,
                                                                              settings.steps), encoder)
        z, what = inverted.inversion.latent[0], inverted.notes
    directions, _ = lab.directions_for(gen, shipped)
    lab.check_attribute(settings.attribute, directions)
    alpha = float(settings.alpha)
    before, after = gen.decode(torch.stack([z, z + alpha * directions[settings.attribute]]))
    edited, crop = inv.edit_photo(photo.convert("RGB"), aligned, before, after, settings.blend)
    recon, moved = lab.to_pil(torch.stack([before, after]))
    steps = [(aligned.image, "aligned face"), (recon, "G(z): its inversion"), (moved, f"G(z {alpha:+g} d)"),
             (crop, "edited face")]
    notes = f"{what}\n\nEdited along {settings.attribute} by alpha {alpha:+g} ({settings.blend})."
    return Result(edited, steps, notes, {**vars(settings), "latent": what})
