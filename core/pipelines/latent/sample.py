"""Explore: faces from seeds. Sample i has seed ``seed + i``, ``z = randn(nz)`` from ``torch.Generator(seed)``;
StyleGAN2 adds the truncation ``w = w_avg + psi (mapping(z) - w_avg)`` (Karras et al., 2019)."""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from core.pipelines.latent import files, lab

MAX_COUNT = 64


@dataclass(frozen=True)
class Settings:
    model_id: str = field(default_factory=lab.default_generator)
    seed: int = 0
    count: int = 8
    psi: float = 1.0  # StyleGAN2 truncation (1 = none)

    def __post_init__(self):
        lab.check_generator(self.model_id)
        if not 1 <= self.count <= MAX_COUNT:
            raise ValueError(f"The number of samples must be between 1 and {MAX_COUNT}, got {self.count}.")


@dataclass(frozen=True)
class Result:
    images: list[Image.Image]
    seeds: list[int]
    latent_files: list[str]  # one .safetensors per sample, in the order of ``images``
    notes: str
    details: dict


def run(settings: Settings | None = None, *, model=None) -> Result:
    """``settings.count`` faces with seeds ``seed, seed + 1, ...``, each with its latent file."""
    settings = settings or Settings()
    gen = lab.generator(settings.model_id, model)
    seeds = list(range(int(settings.seed), int(settings.seed) + int(settings.count)))
    z = gen.z_from_seeds(seeds)
    images = lab.to_pil(gen.decode(z, "z", settings.psi))
    paths = [str(files.save_latent(lab.out_path(f"{settings.model_id}_seed{s}.safetensors"), z[i], settings.model_id,
                                   "z", s)) for i, s in enumerate(seeds)]
    truncation = f", truncation psi {settings.psi:g}" if gen.kind == "stylegan2" else ""
    notes = f"Seeds {seeds[0]}-{seeds[-1]}{truncation}."
    return Result(images, seeds, paths, notes, {**vars(settings), "seeds": seeds})
