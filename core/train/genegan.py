"""Train GeneGAN (Zhou et al., BMVC 2017) for one attribute, e.g. eyeglasses.

    python -m core.train genegan --celeba DATA/celeba --attribute Eyeglasses --out runs/eyeglasses
    python -m core.train genegan --with-dir glasses/ --without-dir no_glasses/ --out runs/mine
    python -m core.train genegan --synthetic artifacts/genegan/train_faces.npz --out runs/synthetic

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

Objective. ``A, x = split(Ax)``, ``B, e = split(Be)``; ``Ax2 = join(A, x)``, ``Be2 = join(B, 0)``,
``Bx = join(B, x)``, ``Ae = join(A, 0)``. The generator minimises

    null * mean|e| + rec * (mean|Ax - Ax2| + mean|Be - Be2|) / 255
    + adv * (G-loss of critic D_Ax on Bx + G-loss of critic D_Be on Ae)
    + para * mean|Ax + Be - Bx - Ae| + 0.5 * wd * sum_W mean(W^2)

(images in 0..255) and two critics ``D_Ax`` (real Ax vs Bx) and ``D_Be`` (real Be vs Ae) learn
to tell them apart. Two recipes (``--recipe``):

- ``official`` (the paper's code): null 1, rec 1, adv 1, para 0.01, wd 5e-5; WGAN critics whose
  weights are clipped to +-0.01, 100 critic steps every 500th iteration, else 1; RMSProp
  (decay 0.8) lr 5e-5 for both; batch 64; 100k iterations.
- ``fast`` (default; what the shipped synthetic model used): the same terms with rec 20 and the
  hinge GAN loss (critics unclipped, 1 step each), Adam lr 2e-4, betas (0.5, 0.999). It trains
  far faster on a CPU than WGAN with clipping.

Any term can be overridden (``--gan``, ``--optim``, ``--lr``, ``--rec`` ...).

Output in ``--out``: ``latest_net_G.safetensors`` (splitter + joiner with this project's names,
``core.models.load("genegan", sd, ch=..., second_ratio=...)``; the config is in its metadata),
``latest_state.safetensors`` (critics, optimisers, RNG, step: ``--resume`` continues from it),
``samples_<step>.png`` (rows: Ax, Be, Ax2, Be2, Bx, Ae) and ``log.txt``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from core.models.genegan import GeneGAN, GeneGANCritic
from core.train.synthetic_glasses import random_glasses, render_glasses
from core.weights import face_layout

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")

RECIPES = {
    "official": dict(gan="wgan", optim="rmsprop", lr=5e-5, rec=1.0, null=1.0, adv=1.0, para=0.01, wd=5e-5,
                     clip=0.01, batch=64, steps=100_000),
    "fast": dict(gan="hinge", optim="adam", lr=2e-4, rec=20.0, null=1.0, adv=1.0, para=0.01, wd=5e-5,
                 clip=0.0, batch=32, steps=20_000),
}


# --------------------------------------------------------------------------- data


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


# --------------------------------------------------------------------------- losses


def swap_forward(model: GeneGAN, ax: torch.Tensor, be: torch.Tensor) -> dict[str, torch.Tensor]:
    """The four joins of one training step: reconstructions Ax2, Be2 and swaps Bx, Ae (and the object e)."""
    a, x = model.split(ax)
    b, e = model.split(be)
    zero = torch.zeros_like(e)
    return {"e": e, "ax2": model.join(a, x), "be2": model.join(b, zero), "bx": model.join(b, x),
            "ae": model.join(a, zero)}


def generator_losses(model: GeneGAN, d_ax: nn.Module, d_be: nn.Module, ax: torch.Tensor, be: torch.Tensor,
                     fwd: dict[str, torch.Tensor], cfg: argparse.Namespace) -> tuple[torch.Tensor, dict[str, float]]:
    """Total generator loss and its terms for one :func:`swap_forward` result."""
    null = fwd["e"].abs().mean()
    rec = ((ax - fwd["ax2"]).abs().mean() + (be - fwd["be2"]).abs().mean()) / 255.0
    if cfg.gan == "ns":
        adv = F.softplus(-d_ax(fwd["bx"])).mean() + F.softplus(-d_be(fwd["ae"])).mean()
    else:  # wgan and hinge: the generator raises the critic's score
        adv = -d_ax(fwd["bx"]).mean() - d_be(fwd["ae"]).mean()
    para = (ax + be - fwd["bx"] - fwd["ae"]).abs().mean()
    wd = sum((m.weight ** 2).mean() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))
    total = cfg.null * null + cfg.rec * rec + cfg.adv * adv + cfg.para * para + 0.5 * cfg.wd * wd
    terms = {"null": null.item(), "rec": rec.item(), "adv": adv.item(), "para": para.item()}
    return total, terms


def critic_loss(d_ax: nn.Module, d_be: nn.Module, ax, be, bx, ae, gan: str) -> torch.Tensor:
    real_ax, fake_ax, real_be, fake_be = d_ax(ax), d_ax(bx.detach()), d_be(be), d_be(ae.detach())
    if gan == "wgan":
        return (fake_ax - real_ax).mean() + (fake_be - real_be).mean()
    if gan == "hinge":
        return sum(F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in ((real_ax, fake_ax), (real_be, fake_be)))
    return sum(F.softplus(-r).mean() + F.softplus(f).mean() for r, f in ((real_ax, fake_ax), (real_be, fake_be)))


@torch.no_grad()
def recalibrate_batchnorm(model: GeneGAN, data, batches: int = 50, batch: int = 64, device="cpu") -> None:
    """Replace the BatchNorm running statistics by exact averages over ``batches`` training batches.

    The running averages (momentum 0.01, as TF's 0.99) lag behind weights that still move; eval-mode
    outputs of a short run are much better with statistics measured on the final weights. The
    weights are not changed.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    was_training = model.training
    model.train()
    for k in range(batches):
        ax, be = (t.to(device) for t in data.batch(2**41 + k, batch))
        swap_forward(model, ax, be)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    model.train(was_training)


def critic_step(critics: list[nn.Module], opt_d: torch.optim.Optimizer, ax, be, bx, ae,
                cfg: argparse.Namespace) -> torch.Tensor:
    d_loss = critic_loss(*critics, ax, be, bx, ae, cfg.gan)
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    if cfg.clip:  # WGAN: clip every critic variable
        with torch.no_grad():
            for p in (p for c in critics for p in c.parameters()):
                p.clamp_(-cfg.clip, cfg.clip)
    return d_loss


def init_weights(module: nn.Module) -> None:
    """N(0, 0.02) for (de)convolution and linear weights, as the official code; BN gamma 1, beta 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)


def make_optimizer(params, cfg: argparse.Namespace) -> torch.optim.Optimizer:
    if cfg.optim == "rmsprop":  # TF RMSPropOptimizer(decay=0.8), epsilon 1e-10, no momentum
        return torch.optim.RMSprop(params, lr=cfg.lr, alpha=0.8, eps=1e-10)
    return torch.optim.Adam(params, lr=cfg.lr, betas=(0.5, 0.999))


# --------------------------------------------------------------------------- checkpoints


def _flatten_optimizer(prefix: str, opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    out = {}
    for idx, state in opt.state_dict()["state"].items():
        for name, value in state.items():
            out[f"{prefix}.{idx}.{name}"] = torch.as_tensor(value).clone()
    return out


def _restore_optimizer(prefix: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    sd = opt.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            idx, name = key[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(idx), {})[name] = value
    sd["state"] = state
    opt.load_state_dict(sd)


def save_checkpoint(out: Path, step: int, cfg: argparse.Namespace, model: GeneGAN, critics: list[nn.Module],
                    optimizers: list[torch.optim.Optimizer]) -> None:
    from safetensors.torch import save_file

    config = {"ch": list(model.ch), "second_ratio": model.second_ratio, "img_size": model.img_size}
    meta = {"config": json.dumps(config), "step": str(step), "args": json.dumps(vars(cfg), default=str)}
    g = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(g, str(out / "latest_net_G.safetensors.part"), metadata=meta)
    (out / "latest_net_G.safetensors.part").replace(out / "latest_net_G.safetensors")
    state = {"step": torch.tensor(step), "torch_rng": torch.get_rng_state()}
    for name, critic in zip(("d_ax", "d_be"), critics):
        state.update({f"{name}.{k}": v.detach().cpu().contiguous() for k, v in critic.state_dict().items()})
    for name, opt in zip(("opt_g", "opt_d"), optimizers):
        state.update({k: v.cpu().contiguous() for k, v in _flatten_optimizer(name, opt).items()})
    save_file(state, str(out / "latest_state.safetensors.part"), metadata={"optim": cfg.optim, "gan": cfg.gan})
    (out / "latest_state.safetensors.part").replace(out / "latest_state.safetensors")


def load_checkpoint(out: Path, cfg: argparse.Namespace, model: GeneGAN, critics: list[nn.Module],
                    optimizers: list[torch.optim.Optimizer], device: torch.device) -> int:
    from safetensors.torch import load_file

    g_path, s_path = out / "latest_net_G.safetensors", out / "latest_state.safetensors"
    if not g_path.exists() or not s_path.exists():
        raise ValueError(f"--resume: no checkpoint in {out} (latest_net_G / latest_state .safetensors).")
    from safetensors import safe_open

    with safe_open(str(s_path), "pt") as f:
        saved = f.metadata() or {}
    if saved.get("optim") != cfg.optim:
        raise ValueError(f"--resume: the checkpoint in {out} was trained with --optim {saved.get('optim')}, "
                         f"not {cfg.optim}; resume with the same recipe/optimiser.")
    model.load_state_dict(load_file(str(g_path), device=str(device)))
    state = load_file(str(s_path), device=str(device))
    for name, critic in zip(("d_ax", "d_be"), critics):
        critic.load_state_dict({k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")})
    for name, opt in zip(("opt_g", "opt_d"), optimizers):
        _restore_optimizer(name, opt, state)
    torch.set_rng_state(state["torch_rng"].cpu())
    return int(state["step"])


@torch.no_grad()
def save_samples(path: Path, model: GeneGAN, ax: torch.Tensor, be: torch.Tensor) -> None:
    """Rows: Ax, Be, Ax2, Be2, Bx (Be with Ax's object), Ae (Ax without its object); eval mode."""
    was_training = model.training
    model.eval()
    a, x = model.split(ax)
    b, _ = model.split(be)
    zero = torch.zeros_like(x)
    rows = [ax, be, model.join(a, x), model.join(b, zero), model.join(b, x), model.join(a, zero)]
    model.train(was_training)
    grid = torch.cat([torch.cat(list(r.clamp(0, 255)), dim=2) for r in rows], dim=1)  # [3, 6H, nW]
    Image.fromarray(grid.round().byte().permute(1, 2, 0).cpu().numpy()).save(path)


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core.train genegan", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_argument_group("data (choose one)")
    data.add_argument("--celeba", help="CelebA root (img_align_celeba/, list_attr_celeba.txt)")
    data.add_argument("--attribute", default="Eyeglasses", help="CelebA attribute (default Eyeglasses)")
    data.add_argument("--template", choices=["glasses", "celeba"], default="glasses",
                      help="5-point alignment target for CelebA (glasses = the app's layout)")
    data.add_argument("--with-dir", help="folder of images WITH the attribute")
    data.add_argument("--without-dir", help="folder of images WITHOUT the attribute")
    data.add_argument("--align", action="store_true", help="detect and align faces in --with-dir/--without-dir")
    data.add_argument("--synthetic", help=".npz of aligned faces (python -m core.train.synthetic_glasses faces)")
    data.add_argument("--no-flip", action="store_true", help="no random horizontal flips")
    data.add_argument("--workers", type=int, default=4, help="processes preparing CelebA (once)")
    p.add_argument("--out", required=True, help="run folder (checkpoints, samples, log)")
    p.add_argument("--recipe", choices=sorted(RECIPES), default="fast")
    p.add_argument("--ch", default="128,256,512", help="splitter widths (official 128,256,512; quarter 32,64,128)")
    p.add_argument("--second-ratio", type=float, default=0.25, help="object fraction of the last channels")
    p.add_argument("--size", type=int, default=64)
    for name, kind in (("gan", str), ("optim", str), ("lr", float), ("rec", float), ("null", float), ("adv", float),
                       ("para", float), ("wd", float), ("clip", float), ("batch", int), ("steps", int)):
        p.add_argument(f"--{name}", type=kind, default=None, help=f"override the recipe's {name}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu / cuda (default: core.device.get_device())")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch default)")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--sample-every", type=int, default=500)
    p.add_argument("--save-every", type=int, default=500)
    p.add_argument("--bn-batches", type=int, default=50, help="batches for the final BatchNorm recalibration")
    p.add_argument("--max-minutes", type=float, default=0.0, help="stop (and save) after this wall time")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    return p


def resolve_config(args: argparse.Namespace) -> argparse.Namespace:
    for key, value in RECIPES[args.recipe].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.gan not in ("wgan", "hinge", "ns") or args.optim not in ("rmsprop", "adam"):
        raise ValueError("--gan must be wgan|hinge|ns and --optim rmsprop|adam")
    return args


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


def main(argv: list[str] | None = None) -> int:
    args = resolve_config(build_parser().parse_args(argv))
    if args.threads:
        torch.set_num_threads(args.threads)
    from core.device import get_device

    device = torch.device(args.device) if args.device else get_device()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log_file = (out / "log.txt").open("a")

    def log(message: str) -> None:
        print(message, flush=True)
        log_file.write(message + "\n")
        log_file.flush()

    data = make_data(args, out, log)
    torch.manual_seed(args.seed)
    ch = tuple(int(c) for c in args.ch.split(","))
    model = GeneGAN(ch=ch, second_ratio=args.second_ratio, img_size=args.size).to(device)
    critics = [GeneGANCritic(ch=ch, img_size=args.size).to(device) for _ in range(2)]
    for m in [model, *critics]:
        init_weights(m)
    opt_g = make_optimizer(model.parameters(), args)
    opt_d = make_optimizer([p for c in critics for p in c.parameters()], args)
    step = load_checkpoint(out, args, model, critics, [opt_g, opt_d], device) if args.resume else 0
    log(f"{'resume at step ' + str(step) if step else 'start'}: recipe {args.recipe}, gan {args.gan}, "
        f"optim {args.optim} lr {args.lr}, rec {args.rec}, batch {args.batch}, ch {ch}, device {device}")
    fixed_ax, fixed_be = (t.to(device) for t in data.batch(2**40, 8))  # a batch no training step draws
    model.train()
    for c in critics:
        c.train()
    start, last, sums = time.time(), time.time(), {}
    while step < args.steps:
        ax, be = (t.to(device) for t in data.batch(step * 1000, args.batch))
        if args.gan == "wgan":
            # The official schedule: critic steps on their own batches (100 on every 500th iteration).
            for k in range(100 if step % 500 == 0 else 1):
                cax, cbe = (t.to(device) for t in data.batch(step * 1000 + k + 1, args.batch))
                with torch.no_grad():
                    fakes = swap_forward(model, cax, cbe)
                d_loss = critic_step(critics, opt_d, cax, cbe, fakes["bx"], fakes["ae"], args)
            fwd = swap_forward(model, ax, be)
        else:
            # One critic step on the generator's own fakes (detached), then the generator step.
            fwd = swap_forward(model, ax, be)
            d_loss = critic_step(critics, opt_d, ax, be, fwd["bx"].detach(), fwd["ae"].detach(), args)
        g_loss, terms = generator_losses(model, *critics, ax, be, fwd, args)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        step += 1
        terms.update(d=d_loss.item(), g=g_loss.item())
        for key, value in terms.items():
            sums[key] = sums.get(key, 0.0) + value
        if step % args.log_every == 0 or step == args.steps:
            n = args.log_every if step % args.log_every == 0 else step % args.log_every
            rate = n / max(1e-9, time.time() - last)
            log(f"step {step} " + " ".join(f"{k} {v / n:.4f}" for k, v in sums.items()) + f" | {rate:.2f} it/s")
            sums, last = {}, time.time()
        if step % args.sample_every == 0:
            save_samples(out / f"samples_{step:06d}.png", model, fixed_ax, fixed_be)
        out_of_time = args.max_minutes and (time.time() - start) / 60 >= args.max_minutes
        if step == args.steps or out_of_time:
            recalibrate_batchnorm(model, data, batches=args.bn_batches, batch=args.batch, device=device)
            log(f"BatchNorm statistics recalibrated on {args.bn_batches} batches")
        if step % args.save_every == 0 or step == args.steps or out_of_time:
            save_checkpoint(out, step, args, model, critics, [opt_g, opt_d])
        if out_of_time:
            log(f"stopping after {args.max_minutes} minutes at step {step}")
            break
    save_samples(out / f"samples_{step:06d}.png", model, fixed_ax, fixed_be)
    log(f"done: {out / 'latest_net_G.safetensors'} (step {step})")
    return 0
