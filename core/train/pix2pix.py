"""Train a pix2pix U-Net (Isola et al., CVPR 2017): L1 + conditional GAN loss, PatchGAN discriminator.

    python -m core.train pix2pix --dataroot DATA --out RUN [--size 64 --ngf 32 --num-downs 6 ...]

Data: the official aligned layout, ``DATA/train/*.png|jpg`` where each file is ``A|B`` side by
side (A = left half = input, B = right half = target; ``--direction BtoA`` swaps them), as in
junyanz/pytorch-CycleGAN-and-pix2pix ``datasets/<name>/train``. Images are resized to ``--size``
and randomly flipped (both halves together).

Objective (the paper's defaults): G minimises ``GAN(D(A, G(A))) + lambda_L1 * |G(A) - B|_1``
with ``lambda_L1 = 100`` and the vanilla (BCE) GAN loss; D = PatchGAN on the pair
``cat(A, B)`` (``NLayerDiscriminator``, BatchNorm, LeakyReLU 0.2), its loss halved. Adam
(lr 2e-4, betas 0.5/0.999); constant lr for the first half of the steps, then linear decay to 0.
The generator trains in paper mode: BatchNorm statistics per image (the paper's batch size 1)
and dropout on; its running statistics are tracked for eval mode.

Output in ``--out``: ``latest_net_G.safetensors`` (the generator state dict, loadable by
``core.models.load("pix2pix_unet", sd, ngf=..., num_downs=...)``), ``latest_state.safetensors``
(discriminator, optimiser states, RNG, step: ``--resume`` continues from it),
``samples_<step>.png`` (input | output | target rows) and ``log.txt``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from core.models.pix2pix_unet import Pix2PixUNet
from core.train.checkpoints import metadata_of, optimizer_tensors, restore_optimizer, run_log, save_atomic
from core.train.weight_init import init_weights

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class PatchDiscriminator(nn.Module):
    """PatchGAN ``NLayerDiscriminator(input_nc, ndf, n_layers)`` of the reference (BatchNorm variant).

    conv4x4 s2 + LReLU, (n_layers - 1) x [conv4x4 s2 + BN + LReLU], conv4x4 s1 + BN + LReLU,
    conv4x4 s1 -> 1 logit per patch. n_layers 3 sees 70x70 patches; 2 sees 34x34 (for 64 px).
    """

    def __init__(self, input_nc: int = 6, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * mult),
                       nn.LeakyReLU(0.2)]
        prev, mult = mult, min(2 ** n_layers, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=False), nn.BatchNorm2d(ndf * mult),
                   nn.LeakyReLU(0.2), nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


# --------------------------------------------------------------------------- data


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def split_aligned(image: Image.Image) -> tuple[Image.Image, Image.Image]:
    """``A|B`` side by side -> (A, B)."""
    width, height = image.size
    half = width // 2
    return image.crop((0, 0, half, height)), image.crop((half, 0, 2 * half, height))


def load_aligned_folder(folder: str | Path, size: int, direction: str = "AtoB") -> tuple[torch.Tensor, torch.Tensor]:
    """All pairs of an aligned folder as two float tensors [N, 3, size, size] in [-1, 1]."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"No folder {folder} (expected the aligned layout DATA/train/*.png with A|B pairs).")
    files = list_images(folder)
    if not files:
        raise ValueError(f"No images in {folder}.")
    inputs, targets = [], []
    for path in files:
        with Image.open(path) as im:
            a, b = split_aligned(im.convert("RGB"))
        if direction == "BtoA":
            a, b = b, a
        for part, out in ((a, inputs), (b, targets)):
            if part.size != (size, size):
                part = part.resize((size, size), Image.Resampling.BICUBIC)
            out.append(np.asarray(part, dtype=np.uint8))
    to = lambda arrays: torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # noqa: E731
    return to(inputs), to(targets)


def save_aligned(a: Image.Image, b: Image.Image, path: str | Path) -> None:
    """Write one ``A|B`` pair in the aligned layout."""
    canvas = Image.new("RGB", (a.width + b.width, max(a.height, b.height)), (255, 255, 255))
    canvas.paste(a, (0, 0))
    canvas.paste(b, (a.width, 0))
    canvas.save(path)


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(out: Path, step: int, args: argparse.Namespace, G: nn.Module, D: nn.Module,
                    opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer) -> None:
    config = {"ngf": args.ngf, "num_downs": args.num_downs, "input_nc": 3, "output_nc": 3}
    meta = {"step": str(step), "config": json.dumps(config), "args": json.dumps(vars(args))}
    save_atomic(G.state_dict(), out / "latest_net_G.safetensors", meta)
    state = {f"D.{k}": v for k, v in D.state_dict().items()}
    state.update(optimizer_tensors("opt_g", opt_g))
    state.update(optimizer_tensors("opt_d", opt_d))
    state["rng.torch"] = torch.get_rng_state()
    save_atomic(state, out / "latest_state.safetensors", meta)


def load_checkpoint(out: Path, G: nn.Module, D: nn.Module, opt_g: torch.optim.Optimizer,
                    opt_d: torch.optim.Optimizer) -> int:
    from safetensors.torch import load_file

    g_path, s_path = out / "latest_net_G.safetensors", out / "latest_state.safetensors"
    if not (g_path.is_file() and s_path.is_file()):
        raise ValueError(f"--resume: no checkpoint in {out} (latest_net_G / latest_state .safetensors).")
    G.load_state_dict(load_file(str(g_path)), strict=True)
    state = load_file(str(s_path))
    D.load_state_dict({k[2:]: v for k, v in state.items() if k.startswith("D.")}, strict=True)
    restore_optimizer("opt_g", opt_g, state)
    restore_optimizer("opt_d", opt_d, state)
    torch.set_rng_state(state["rng.torch"])
    return int(metadata_of(s_path)["step"])


# --------------------------------------------------------------------------- training


def lr_factor(step: int, total: int) -> float:
    """Constant for the first half, then linear decay to 0 (the reference's n_epochs + n_epochs_decay)."""
    half = total // 2
    return 1.0 if step < half else max(0.0, 1.0 - (step - half) / max(1, total - half))


def save_samples(path: Path, G: Pix2PixUNet, a: torch.Tensor, b: torch.Tensor) -> None:
    with torch.no_grad():
        fake = G(a, batch_stats=True, dropout=False)
    rows = [torch.cat(list(t), dim=2) for t in (a, fake, b)]
    grid = ((torch.cat(rows, dim=1) + 1) * 127.5).clamp(0, 255).round().byte().permute(1, 2, 0).numpy()
    Image.fromarray(grid).save(path)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core.train pix2pix", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataroot", required=True, help="folder with train/ (aligned A|B images)")
    p.add_argument("--out", required=True, help="run folder (checkpoints, samples, log)")
    p.add_argument("--direction", choices=["AtoB", "BtoA"], default="AtoB")
    p.add_argument("--size", type=int, default=256, help="training resolution (square)")
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--num-downs", type=int, default=8, help="U-Net depth; size must equal 2**num_downs")
    p.add_argument("--ndf", type=int, default=64)
    p.add_argument("--n-layers-d", type=int, default=3, help="PatchGAN depth (3: 70x70 patches)")
    p.add_argument("--no-dropout", action="store_true")
    p.add_argument("--steps", type=int, default=10000)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--beta1", type=float, default=0.5)
    p.add_argument("--lambda-l1", type=float, default=100.0)
    p.add_argument("--no-flip", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--save-every", type=int, default=500)
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    return p


def draw_batch(inputs: torch.Tensor, targets: torch.Tensor, step: int, args: argparse.Namespace):
    """Step ``step``'s batch, from a per-step seeded permutation (a resumed run sees the same data),
    each pair flipped horizontally with probability 1/2 unless ``--no-flip``."""
    idx = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(args.seed * 1_000_003 + step))
    idx = idx[: args.batch]
    a, b = inputs[idx], targets[idx]
    if not args.no_flip:
        flip = torch.rand(len(idx)) < 0.5
        a = torch.where(flip[:, None, None, None], a.flip(-1), a)
        b = torch.where(flip[:, None, None, None], b.flip(-1), b)
    return a, b


def train_step(G: nn.Module, D: nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
               a: torch.Tensor, b: torch.Tensor, lambda_l1: float) -> dict[str, float]:
    """One discriminator and one generator update; returns the three losses."""
    fake = G(a)
    # D: real pairs -> 1, fake pairs -> 0
    opt_d.zero_grad(set_to_none=True)
    pred_fake = D(torch.cat([a, fake.detach()], 1))
    pred_real = D(torch.cat([a, b], 1))
    loss_d = 0.5 * (F.binary_cross_entropy_with_logits(pred_fake, torch.zeros_like(pred_fake))
                    + F.binary_cross_entropy_with_logits(pred_real, torch.ones_like(pred_real)))
    loss_d.backward()
    opt_d.step()
    # G: fool D and stay close to the target
    opt_g.zero_grad(set_to_none=True)
    pred_fake = D(torch.cat([a, fake], 1))
    loss_gan = F.binary_cross_entropy_with_logits(pred_fake, torch.ones_like(pred_fake))
    loss_l1 = F.l1_loss(fake, b)
    (loss_gan + lambda_l1 * loss_l1).backward()
    opt_g.step()
    return {"D": loss_d.item(), "G_GAN": loss_gan.item(), "G_L1": loss_l1.item()}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.size != 2 ** args.num_downs:
        raise SystemExit(f"--size {args.size} needs --num-downs {int(math.log2(args.size))} (a 1x1 bottleneck).")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = run_log(out)
    inputs, targets = load_aligned_folder(Path(args.dataroot) / "train", args.size, args.direction)
    G = Pix2PixUNet(ngf=args.ngf, num_downs=args.num_downs, use_dropout=not args.no_dropout)
    D = PatchDiscriminator(6, args.ndf, args.n_layers_d)
    init_weights(G, batchnorm_std=0.02)
    init_weights(D, batchnorm_std=0.02)
    opt_g = torch.optim.Adam(G.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
    step = load_checkpoint(out, G, D, opt_g, opt_d) if args.resume else 0
    log(f"pix2pix: {len(inputs)} pairs from {args.dataroot}, G {sum(p.numel() for p in G.parameters()):,} params, "
        f"D {sum(p.numel() for p in D.parameters()):,} params, {'resuming at' if step else 'starting at'} step {step} "
        f"of {args.steps}, batch {args.batch}, {torch.get_num_threads()} thread(s)")
    sample_idx = torch.arange(min(8, len(inputs)))
    G.train()
    D.train()
    t0, seen, sums = time.perf_counter(), 0, {"D": 0.0, "G_GAN": 0.0, "G_L1": 0.0}
    while step < args.steps:
        a, b = draw_batch(inputs, targets, step, args)
        for group in opt_g.param_groups + opt_d.param_groups:
            group["lr"] = args.lr * lr_factor(step, args.steps)
        for key, value in train_step(G, D, opt_g, opt_d, a, b, args.lambda_l1).items():
            sums[key] += value
        step += 1
        seen += 1
        if step % args.log_every == 0 or step == args.steps:
            rate = seen / (time.perf_counter() - t0)
            eta = (args.steps - step) / rate
            log(f"step {step}/{args.steps}  {rate:.2f} it/s  eta {eta / 60:.1f} min  "
                f"lr {opt_g.param_groups[0]['lr']:.2e}  " + "  ".join(f"{k} {v / seen:.4f}" for k, v in sums.items()))
            t0, seen, sums = time.perf_counter(), 0, dict.fromkeys(sums, 0.0)
        if step % args.save_every == 0 or step == args.steps:
            save_checkpoint(out, step, args, G, D, opt_g, opt_d)
            G.eval()
            save_samples(out / f"samples_{step:06d}.png", G, inputs[sample_idx], targets[sample_idx])
            G.train()
            log(f"checkpoint at step {step}: {out / 'latest_net_G.safetensors'}")
    return 0
