"""StyleGAN2 style mixing: face A with the coarse (4-8 px), middle (16-32 px) or fine (64 px and up) W+
layers of face B (:data:`core.pipelines.latent.space.LAYER_GROUPS`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from PIL import Image

from core.pipelines.latent import lab
from core.pipelines.latent import space as lat


@dataclass(frozen=True)
class Settings:
    model_id: str = field(default_factory=lab.default_generator)
    group: str = "coarse"
    psi: float = 1.0

    def __post_init__(self):
        lab.check_generator(self.model_id)
        if self.group not in lat.LAYER_GROUPS:
            raise ValueError(f"The layer group must be one of {', '.join(lat.LAYER_GROUPS)}, not {self.group!r}.")


@dataclass(frozen=True)
class Result:
    images: list[Image.Image]  # A, B, A with B's group layers
    captions: list[str]
    notes: str
    details: dict


def run(a: lab.LatentSource, b: lab.LatentSource, settings: Settings | None = None, *, model=None) -> Result:
    settings = settings or Settings()
    gen = lab.generator(settings.model_id, model)
    if gen.kind != "stylegan2":
        raise ValueError("Style mixing needs StyleGAN2 (the DCGAN has one latent for the whole image).")
    (w_a, what_a), (w_b, what_b) = lab.latent_of(gen, a, "w", settings.psi), lab.latent_of(gen, b, "w", settings.psi)
    n, group = gen.model.n_latent, settings.group
    latents = torch.stack([lat.mix_styles(w_a, w_a, group, n), lat.mix_styles(w_b, w_b, group, n),
                           lat.mix_styles(w_a, w_b, group, n)])
    layers = lat.layer_indices(group, n)
    return Result(lab.to_pil(gen.decode(latents, "w")), [f"A: {what_a}", f"B: {what_b}", f"A with B's {group} layers"],
                  f"W+ layers {layers[0]}-{layers[-1]} of A were replaced by B's.",
                  {**vars(settings), "a": what_a, "b": what_b, "layers": layers})
