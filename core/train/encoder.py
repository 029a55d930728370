"""Train a latent encoder (``core.models.latent_encoder``) on a generator's own samples.

    python -m core.train encoder --generator dcgan.faces64 --out artifacts/encoder \
        --export apps/latent/weights/latent_encoder_dcgan64.safetensors

A pool of ``--pool`` samples ``x = G(z)`` (z ~ N(0, I) from ``--seed``, quantised to 8 bits like
any uploaded image) is drawn once and kept in ``--out``. Each step takes ``--batch`` of them:
loss = ``|E(x) - z|^2`` (mean over the latent) + ``--pixel-weight`` x ``|G(E(x)) - x|^2`` (mean
over pixels in [-1, 1]) on the first ``--pixel-batch`` images, through the frozen generator (the
pixel term is what makes the encoder's guess look right, not only land near z). Adam
(``--lr``, betas 0.5/0.999), the learning rate decays linearly to 0 over the last half.
Checkpoints (encoder, optimiser, RNG, step) every ``--save-every`` steps; ``--resume``
continues exactly; ``--minutes`` stops early (and saves) when the wall-time budget is spent.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.models.latent_encoder import LatentEncoder
from core.train.checkpoints import metadata_of, optimizer_tensors, restore_optimizer, run_log, save_atomic


@torch.no_grad()
def sample_pool(generator: nn.Module, count: int, seed: int, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``count`` latents [count, nz] float32 and their images [count, H, W, 3] uint8 (z from ``seed``)."""
    z = torch.randn(count, generator.nz, generator=torch.Generator().manual_seed(seed))
    images = []
    for start in range(0, count, batch):
        x = generator(z[start:start + batch])
        images.append(((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy())
    return z.numpy(), np.concatenate(images)


def to_model_range(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float [N, 3, H, W] in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1


def encoder_loss(encoder: nn.Module, generator: nn.Module, x: torch.Tensor, z: torch.Tensor,
                 pixel_batch: int, pixel_weight: float) -> tuple[torch.Tensor, dict[str, float]]:
    guess = encoder(x)
    latent = F.mse_loss(guess, z)
    loss, parts = latent, {"latent": latent.item()}
    if pixel_batch > 0 and pixel_weight > 0:
        pixel = F.mse_loss(generator(guess[:pixel_batch]), x[:pixel_batch])
        loss = loss + pixel_weight * pixel
        parts["pixel"] = pixel.item()
    return loss, parts


def lr_factor(step: int, total: int) -> float:
    """1 for the first half, then linearly down to 0."""
    half = total / 2
    return 1.0 if step < half else max(0.0, (total - step) / (total - half))


def save_checkpoint(out: Path, step: int, args: argparse.Namespace, encoder: nn.Module,
                    opt: torch.optim.Optimizer) -> None:
    meta = {"step": str(step), "config": json.dumps(encoder_config(args)), "args": json.dumps(vars(args))}
    state = {f"E.{k}": v for k, v in encoder.state_dict().items()}
    state.update(optimizer_tensors("opt", opt))
    state["rng.torch"] = torch.get_rng_state()
    save_atomic(state, out / "latest_state.safetensors", meta)


def load_checkpoint(out: Path, encoder: nn.Module, opt: torch.optim.Optimizer) -> int:
    from safetensors.torch import load_file

    path = out / "latest_state.safetensors"
    if not path.is_file():
        raise ValueError(f"--resume: no checkpoint in {out} (latest_state.safetensors).")
    state = load_file(str(path))
    encoder.load_state_dict({k[2:]: v for k, v in state.items() if k.startswith("E.")}, strict=True)
    restore_optimizer("opt", opt, state)
    torch.set_rng_state(state["rng.torch"])
    return int(metadata_of(path)["step"])


def export(encoder: nn.Module, path: Path, args: argparse.Namespace, step: int) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in encoder.state_dict().items()}, str(path),
              metadata={"config": json.dumps(encoder_config(args)), "step": str(step),
                        "generator": args.generator, "recipe": json.dumps(vars(args))})


def encoder_config(args: argparse.Namespace) -> dict:
    return {"nz": args.nz, "width": args.width, "img_size": args.img_size}


def load_pool(out: Path, generator: nn.Module, args: argparse.Namespace, log) -> tuple[np.ndarray, np.ndarray]:
    path = out / f"pool_{args.pool}_seed{args.seed}.npz"
    if path.is_file():
        data = np.load(path, allow_pickle=False)
        return data["z"], data["images"]
    started = time.time()
    z, images = sample_pool(generator, args.pool, args.seed)
    np.savez(path, z=z, images=images)
    log(f"sampled a pool of {args.pool} faces in {time.time() - started:.0f} s")
    return z, images


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core.train encoder", description=__doc__.split("\n")[0])
    p.add_argument("--generator", default="dcgan.faces64", help="manifest id of the (frozen) generator")
    p.add_argument("--out", required=True, help="run folder: sample pool, checkpoints, log")
    p.add_argument("--export", help="also write the final encoder weights here (.safetensors)")
    p.add_argument("--pool", type=int, default=20000, help="generator samples drawn once for training")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--pixel-batch", type=int, default=16, help="images per step that also get the pixel loss")
    p.add_argument("--pixel-weight", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--minutes", type=float, default=0, help="stop (and save) after this much wall time; 0 = no limit")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    return p


def main(argv: list[str] | None = None) -> int:
    from core.weights import load_model

    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = run_log(out)
    generator = load_model(args.generator, device="cpu", dtype=torch.float32).eval().requires_grad_(False)
    args.nz, args.img_size = generator.nz, 64
    z_pool, image_pool = load_pool(out, generator, args, log)
    args.img_size = image_pool.shape[1]
    torch.manual_seed(args.seed)
    encoder = LatentEncoder(nz=args.nz, width=args.width, img_size=args.img_size)
    opt = torch.optim.Adam(encoder.parameters(), lr=args.lr, betas=(0.5, 0.999))
    step = load_checkpoint(out, encoder, opt) if args.resume else 0
    if args.resume:
        log(f"resuming at step {step}")
    encoder.train()
    started, running, first_step = time.time(), {}, step
    while step < args.steps:
        # Each step's batch comes from a per-step seeded draw, so a resumed run sees the same data.
        idx = np.random.default_rng([args.seed, step]).integers(len(z_pool), size=args.batch)
        x, z = to_model_range(image_pool[idx]), torch.from_numpy(z_pool[idx])
        for group in opt.param_groups:
            group["lr"] = args.lr * lr_factor(step, args.steps)
        loss, parts = encoder_loss(encoder, generator, x, z, args.pixel_batch, args.pixel_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        for k, v in parts.items():
            running.setdefault(k, []).append(v)
        out_of_time = args.minutes > 0 and time.time() - started > args.minutes * 60
        if step % args.log_every == 0 or step == args.steps or out_of_time:
            rate = (step - first_step) / max(time.time() - started, 1e-9)
            log(f"step {step}/{args.steps} " + " ".join(f"{k} {np.mean(v):.4f}" for k, v in running.items())
                + f" ({time.time() - started:.0f} s, {rate:.2f} it/s)")
            running = {}
        if step % args.save_every == 0 or step == args.steps or out_of_time:
            save_checkpoint(out, step, args, encoder, opt)
        if out_of_time:
            log(f"stopped at step {step}: the --minutes budget is spent")
            break
    encoder.eval()
    if args.export:
        export(encoder, Path(args.export), args, step)
        log(f"exported {args.export}")
    return 0
