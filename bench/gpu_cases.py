"""The cases of ``bench/gpu_check.py``: each generator architecture of the manifest at its standard
size (random weights of the real size, or the trained weights that are here), its input (an example
image of the repository, or a seeded latent) and its forward pass, with output in 8-bit levels.
``--tiny`` replaces each config by a tiny one (``TINY``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import core.models as registry
from core.weights import availability, load_manifest, load_state_dict

ROOT = Path(__file__).resolve().parents[1]
LAMA_ODD_SIZE = (453, 601)  # H, W: padded to (456, 608)
# Encoders and face detectors, not generators: float32 in the manifest, no case here yet.
NOT_GENERATORS = ("latent_encoder", "mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet")
TINY = {  # arch -> config replacing the real one in --tiny mode
    "dcgan": {"nz": 100, "ngf": 8}, "cyclegan_resnet": {"ngf": 8, "n_blocks": 2},
    "pix2pix_unet": {"ngf": 8, "num_downs": 6}, "lama": {"ngf": 8, "n_blocks": 2, "max_features": 64},
    "genegan": {"ch": [8, 16, 32]}, "glasses_classifier": {"width": 4},
    "migan": {"resolution": 64, "ch_base": 512, "ch_max": 16},
    "stylegan2": {"size": 32, "style_dim": 32, "n_mlp": 2, "channels": {4: 32, 8: 32, 16: 16, 32: 8}},
}


def photo(name: str, size: tuple[int, int], mode: str = "RGB") -> np.ndarray:
    """An example image of the repository as float32 [H, W, C] in [0, 1] at (H, W)."""
    image = Image.open(ROOT / "apps" / name).convert(mode).resize(size[::-1], Image.Resampling.BICUBIC)
    array = np.asarray(image, dtype=np.float32) / 255.0
    return array[..., None] if array.ndim == 2 else array


def chw(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None]


def as_input(model: torch.nn.Module, t: torch.Tensor) -> torch.Tensor:
    p = next(model.parameters())
    return t.to(p.device, p.dtype)


def make_case_inputs(arch: str, config: dict, size) -> tuple[list[torch.Tensor], callable]:
    """CPU fp32 inputs and ``forward(model, *inputs) -> output in 8-bit levels`` (float32, CPU)."""
    from core.device import make_generator
    from core.images import pad_to_multiple, unpad

    def levels(y, low=-1.0, high=1.0):
        return ((y.float().cpu() - low) * (255.0 / (high - low)))

    g = torch.Generator().manual_seed(0)
    if arch == "dcgan":
        return [torch.randn(16, config.get("nz", 100), 1, 1, generator=g)], lambda m, z: levels(m(as_input(m, z)))
    if arch == "cyclegan_resnet":
        return [chw(photo("season/examples/chelsea.jpg", (size, size))) * 2 - 1], lambda m, x: levels(m(as_input(m, x)))
    if arch == "pix2pix_unet":  # paper mode, as the sketch app runs it: per-image statistics, seeded dropout
        x = chw(photo("sketch2photo/examples/face_sketch_1.png", (size, size), "RGB")) * 2 - 1
        return [x], lambda m, x: levels(m(as_input(m, x), batch_stats=True, dropout=True, generator=make_generator(0)))
    if arch == "lama":
        height, width = size
        image = photo("inpaint/examples/astronaut.jpg", (height, width))
        hole = (photo("inpaint/examples/astronaut_mask.png", (height, width), "L") > 0.5).astype(np.float32)
        padded, _ = pad_to_multiple(chw(np.concatenate([image * (1 - hole), hole], axis=2)), 8, mode="symmetric")
        return [padded], lambda m, x: levels(unpad(m(as_input(m, x)), (height, width))[0].permute(1, 2, 0), 0.0, 1.0)
    if arch == "migan":  # (known - 0.5, image * known), image in [-1, 1]
        image = photo("inpaint/examples/astronaut.jpg", (size, size)) * 2 - 1
        known = (photo("inpaint/examples/astronaut_mask.png", (size, size), "L") <= 0.5).astype(np.float32)
        x = chw(np.concatenate([known - 0.5, image * known], axis=2))
        return [x], lambda m, x: levels(m(as_input(m, x)))
    if arch in ("genegan", "glasses_classifier"):
        faces = torch.cat([chw(photo(f"glasses/examples/{n}.png", (64, 64))) for n in ("a_glasses", "b_face64")]) * 255
        if arch == "glasses_classifier":
            return [faces], lambda m, x: levels(m.probability(as_input(m, x)), 0.0, 1.0)

        def swap(m, x):
            background, obj = m.split(as_input(m, x))
            return levels(torch.cat([m.join(background[1:], obj[:1]), m.join(background[:1], obj[:1] * 0)]), 0, 255)

        return [faces], swap
    if arch == "stylegan2":
        model = registry.build("stylegan2", **config)  # shapes only: n_latent and the noise sizes
        z = torch.randn(1, model.style_dim, generator=g)
        noise = [torch.randn(1, 1, model.noise_resolution(i), model.noise_resolution(i), generator=g)
                 for i in range(model.num_layers)]

        def synthesis(m, z, *noise):
            w_plus = m.mapping(as_input(m, z))[:, None].expand(-1, m.n_latent, -1)
            return levels(m.synthesis(w_plus, noise=[as_input(m, n) for n in noise]))

        return [z, *noise], synthesis
    raise ValueError(f"no GPU check for architecture {arch!r}")


@dataclass
class Case:
    name: str
    weights: str  # "random" or "trained"
    arch: str
    config: dict
    size: object  # side, (H, W), or "latent"
    model_ids: tuple[str, ...]

    def build(self) -> torch.nn.Module:
        if self.weights == "trained":
            return registry.load(self.arch, load_state_dict(self.model_ids[0], download=False), **self.config)
        torch.manual_seed(0)
        return registry.build(self.arch, **self.config).eval().requires_grad_(False)


def standard_size(arch: str, entry, tiny: bool):
    if arch in ("dcgan", "stylegan2"):
        return "latent"
    if arch in ("genegan", "glasses_classifier"):
        return 64
    if arch == "lama":
        return (64, 64) if tiny else (512, 512)
    return 64 if tiny else int(entry.info.get("input", {}).get("size", 256))


def cases(tiny: bool) -> list[Case]:
    """One random-weights case per (architecture, config, size) of the manifest, then the trained ones here."""
    random, trained = {}, []
    for model_id, entry in sorted(load_manifest().items()):
        if entry.arch not in registry.ARCHITECTURES or entry.arch in NOT_GENERATORS:
            continue
        config = TINY[entry.arch] if tiny else entry.config
        size = standard_size(entry.arch, entry, tiny)
        key = json.dumps([entry.arch, config, size], sort_keys=True)
        random.setdefault(key, Case("", "random", entry.arch, config, size, ()))
        random[key].model_ids += (model_id,)
        if not tiny and availability(model_id)[0]:
            trained.append(Case(f"{model_id} (trained)", "trained", entry.arch, entry.config, size, (model_id,)))
    out = list(random.values())
    for case in out:
        case.name = f"{case.arch} {describe_size(case)} ({', '.join(case.model_ids)})"
    lama = next((c for c in out if c.arch == "lama"), None)
    if lama is not None:
        odd = (45, 61) if tiny else LAMA_ODD_SIZE
        out.append(Case(f"lama {odd[1]}x{odd[0]}, padded to a multiple of 8", "random", "lama", lama.config, odd,
                        lama.model_ids))
    return out + trained


def describe_size(case: Case) -> str:
    if case.size == "latent":
        return f"{case.config.get('size', 64)} px" if case.arch == "stylegan2" else "64 px x16"
    return f"{case.size[1]}x{case.size[0]}" if isinstance(case.size, tuple) else f"{case.size} px"
