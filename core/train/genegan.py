"""Train GeneGAN (Zhou et al., BMVC 2017) for one attribute, e.g. eyeglasses.

    python -m core.train genegan --celeba DATA/celeba --attribute Eyeglasses --out runs/eyeglasses
    python -m core.train genegan --with-dir glasses/ --without-dir no_glasses/ --out runs/mine
    python -m core.train genegan --synthetic artifacts/genegan/train_faces.npz --out runs/synthetic

Data: :mod:`core.train.genegan_data` (``--celeba``, ``--with-dir``/``--without-dir`` or ``--synthetic``).

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

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from core.models.genegan import GeneGAN, GeneGANCritic
from core.train.checkpoints import metadata_of, optimizer_tensors, restore_optimizer, run_log, save_atomic
from core.train.genegan_data import make_data
from core.train.weight_init import init_weights

RECIPES = {
    "official": dict(gan="wgan", optim="rmsprop", lr=5e-5, rec=1.0, null=1.0, adv=1.0, para=0.01, wd=5e-5,
                     clip=0.01, batch=64, steps=100_000),
    "fast": dict(gan="hinge", optim="adam", lr=2e-4, rec=20.0, null=1.0, adv=1.0, para=0.01, wd=5e-5,
                 clip=0.0, batch=32, steps=20_000),
}


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


def make_optimizer(params, cfg: argparse.Namespace) -> torch.optim.Optimizer:
    if cfg.optim == "rmsprop":  # TF RMSPropOptimizer(decay=0.8), epsilon 1e-10, no momentum
        return torch.optim.RMSprop(params, lr=cfg.lr, alpha=0.8, eps=1e-10)
    return torch.optim.Adam(params, lr=cfg.lr, betas=(0.5, 0.999))


def save_checkpoint(out: Path, step: int, cfg: argparse.Namespace, model: GeneGAN, critics: list[nn.Module],
                    optimizers: list[torch.optim.Optimizer]) -> None:
    config = {"ch": list(model.ch), "second_ratio": model.second_ratio, "img_size": model.img_size}
    meta = {"config": json.dumps(config), "step": str(step), "args": json.dumps(vars(cfg), default=str)}
    save_atomic(model.state_dict(), out / "latest_net_G.safetensors", meta)
    state = {"step": torch.tensor(step), "torch_rng": torch.get_rng_state()}
    for name, critic in zip(("d_ax", "d_be"), critics):
        state.update({f"{name}.{k}": v for k, v in critic.state_dict().items()})
    for name, opt in zip(("opt_g", "opt_d"), optimizers):
        state.update(optimizer_tensors(name, opt))
    save_atomic(state, out / "latest_state.safetensors", {"optim": cfg.optim, "gan": cfg.gan})


def load_checkpoint(out: Path, cfg: argparse.Namespace, model: GeneGAN, critics: list[nn.Module],
                    optimizers: list[torch.optim.Optimizer], device: torch.device) -> int:
    from safetensors.torch import load_file

    g_path, s_path = out / "latest_net_G.safetensors", out / "latest_state.safetensors"
    if not g_path.exists() or not s_path.exists():
        raise ValueError(f"--resume: no checkpoint in {out} (latest_net_G / latest_state .safetensors).")
    saved = metadata_of(s_path)
    if saved.get("optim") != cfg.optim:
        raise ValueError(f"--resume: the checkpoint in {out} was trained with --optim {saved.get('optim')}, "
                         f"not {cfg.optim}; resume with the same recipe/optimiser.")
    model.load_state_dict(load_file(str(g_path), device=str(device)))
    state = load_file(str(s_path), device=str(device))
    for name, critic in zip(("d_ax", "d_be"), critics):
        critic.load_state_dict({k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")})
    for name, opt in zip(("opt_g", "opt_d"), optimizers):
        restore_optimizer(name, opt, state)
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


def train_step(model: GeneGAN, critics: list[nn.Module], opt_g: torch.optim.Optimizer,
               opt_d: torch.optim.Optimizer, data, step: int, args: argparse.Namespace,
               device: torch.device) -> dict[str, float]:
    """Critic step(s) then one generator step; returns the loss terms, ``d`` and ``g``."""
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
    return {**terms, "d": d_loss.item(), "g": g_loss.item()}


def main(argv: list[str] | None = None) -> int:
    args = resolve_config(build_parser().parse_args(argv))
    if args.threads:
        torch.set_num_threads(args.threads)
    from core.device import get_device

    device = torch.device(args.device) if args.device else get_device()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = run_log(out)
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
    for m in [model, *critics]:
        m.train()
    start, last, sums = time.time(), time.time(), {}
    while step < args.steps:
        for key, value in train_step(model, critics, opt_g, opt_d, data, step, args, device).items():
            sums[key] = sums.get(key, 0.0) + value
        step += 1
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
