"""Walk from latent A to latent B, linear or spherical (:func:`core.pipelines.latent.space.slerp`), in z
or in W (StyleGAN2), with both walks' smoothness measured so the user sees lerp and slerp side by side."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from core.pipelines.latent import files, lab
from core.pipelines.latent import space as lat


@dataclass(frozen=True)
class Settings:
    model_id: str = field(default_factory=lab.default_generator)
    space: str = "z"
    method: str = "slerp"
    frames: int = 16
    psi: float = 1.0
    fps: float = 12.0

    def __post_init__(self):
        if self.method not in lat.METHODS:
            raise ValueError(f"method must be one of {', '.join(lat.METHODS)}, not {self.method!r}.")
        lab.check_generator(self.model_id)
        lat.check_frames(self.frames)


@dataclass(frozen=True)
class Result:
    animation: str  # path of the animated WebP
    strip: Image.Image  # the frames side by side
    frames: np.ndarray  # uint8 [T, H, W, 3] of the chosen method
    notes: str  # the walk and a Markdown table of both methods' smoothness
    details: dict


def run(a: lab.LatentSource, b: lab.LatentSource, settings: Settings | None = None, *, model=None) -> Result:
    settings = settings or Settings()
    gen = lab.generator(settings.model_id, model)
    space, psi = settings.space, settings.psi
    (latent_a, what_a), (latent_b, what_b) = lab.latent_of(gen, a, space, psi), lab.latent_of(gen, b, space, psi)
    rows, chosen = {}, None
    for method in lat.METHODS:
        rendered = lat.to_uint8(gen.decode(lat.interpolate(latent_a, latent_b, int(settings.frames), method), space, psi))
        rows[method] = lat.smoothness(rendered)
        if method == settings.method:
            chosen = rendered
    animation = files.animated_webp(chosen, lab.out_path(f"walk_{settings.method}_{space}.webp"), fps=settings.fps)
    table = ["| method | mean step (0-255) | step CV (0 = even) | max step |", "|---|---|---|---|"]
    table += [f"| {m}{' (shown)' if m == settings.method else ''} | {r['mean_step']:.2f} | {r['step_cv']:.3f} | "
              f"{r['max_step']:.2f} |" for m, r in rows.items()]
    notes = f"From {what_a} to {what_b} in {space}, {settings.frames} frames.\n\n" + "\n".join(table)
    details = {**vars(settings), "from": what_a, "to": what_b, "smoothness": rows}
    return Result(str(animation), files.strip(chosen), chosen, notes, details)
