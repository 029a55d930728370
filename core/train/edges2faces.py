"""Data and evaluation for the edges -> faces 64 px pix2pix model (``pix2pix.edges2faces64``).

    python -m core.train edges2faces data --out DATA [--train 6000 --test 200 --seed 0]
    python -m core.train edges2faces evaluate --data DATA --weights RUN/latest_net_G.safetensors
    python -m core.train edges2faces export --weights RUN/latest_net_G.safetensors --out FILE

``data`` samples faces from the offline DCGAN generator (``dcgan.faces64``, eval mode, z ~ N(0, I)
from a seeded generator; the test faces use another seed, so they are never seen in training),
draws each face's sketch with :func:`core.pipelines.sketch.face_sketch` and writes aligned ``sketch|face``
pairs to ``DATA/train`` and ``DATA/test`` (the official pix2pix layout, A = sketch).

``evaluate`` reports the mean absolute error (L1, pixel values in [0, 1]) of the model on the
test pairs, in eval mode and in paper mode, against two trivial baselines: the blurred sketch
itself and the mean training face.

``export`` writes the generator for shipping: floating-point tensors stored as float16 (half the
size; the loader casts them back to the model's dtype), the training metadata kept.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

from core.train.checkpoints import metadata_of, save_atomic
from core.train.pix2pix import load_aligned_folder, save_aligned

SIZE = 64


def make_data(out: Path, n_train: int, n_test: int, seed: int, batch: int = 64) -> None:
    from core.images import to_pil
    from core.pipelines.sketch import face_sketch
    from core.weights import load_model

    generator = load_model("dcgan.faces64", device="cpu", dtype=torch.float32)
    for split, count, split_seed in (("train", n_train, seed), ("test", n_test, seed + 1)):
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        rng = torch.Generator().manual_seed(split_seed)
        done = 0
        while done < count:
            z = torch.randn(min(batch, count - done), 100, generator=rng)
            with torch.inference_mode():
                faces = generator(z)
            for face_tensor in faces:
                face = to_pil(face_tensor)
                save_aligned(face_sketch(face, SIZE), face, folder / f"{done:05d}.png")
                done += 1
        print(f"{split}: {count} pairs in {folder} (seed {split_seed})", flush=True)


def l1(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean absolute error with both images mapped from [-1, 1] to [0, 1]."""
    return float((pred.clamp(-1, 1) - target).abs().mean() / 2)


def evaluate(data: Path, weights: Path, config: dict | None = None, seed: int = 0) -> dict[str, float]:
    from safetensors.torch import load_file

    import core.models as registry

    if config is None:
        config = json.loads(metadata_of(weights).get("config", "{}"))
    model = registry.load("pix2pix_unet", load_file(str(weights)), **config)
    sketches, faces = load_aligned_folder(data / "test", SIZE)
    _, train_faces = load_aligned_folder(data / "train", SIZE)
    mean_face = train_faces.mean(0, keepdim=True)
    blurred = torch.from_numpy(np.stack([
        np.asarray(Image.fromarray(((s.permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8))
                   .filter(ImageFilter.GaussianBlur(2)))
        for s in sketches])).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.inference_mode():
        eval_out = torch.cat([model(x[None]) for x in sketches])
        paper_out = torch.cat([
            model(x[None], batch_stats=True, dropout=True, generator=torch.Generator().manual_seed(seed + i))
            for i, x in enumerate(sketches)])
        paper_nodrop = torch.cat([model(x[None], batch_stats=True, dropout=False) for x in sketches])
    return {
        "pairs": len(sketches),
        "model_eval_mode": l1(eval_out, faces),
        "model_paper_mode": l1(paper_out, faces),
        "model_paper_mode_no_dropout": l1(paper_nodrop, faces),
        "baseline_blurred_sketch": l1(blurred, faces),
        "baseline_mean_training_face": l1(mean_face.expand_as(faces), faces),
    }


def export(weights: Path, out: Path) -> str:
    """Write ``weights`` as a float16 safetensors file at ``out``; return its sha256."""
    from safetensors.torch import load_file

    from core.weights import sha256_of

    state = {k: v.half() if v.is_floating_point() else v for k, v in load_file(str(weights)).items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_atomic(state, out, {**metadata_of(weights), "dtype": "float16"})
    return sha256_of(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.train edges2faces", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("data", help="sample DCGAN faces and their sketches into DATA/train and DATA/test")
    d.add_argument("--out", required=True)
    d.add_argument("--train", type=int, default=6000)
    d.add_argument("--test", type=int, default=200)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--threads", type=int, default=1)
    e = sub.add_parser("evaluate", help="mean L1 on DATA/test against the trivial baselines")
    e.add_argument("--data", required=True)
    e.add_argument("--weights", required=True)
    e.add_argument("--seed", type=int, default=0, help="dropout seed of the paper-mode run")
    e.add_argument("--threads", type=int, default=1)
    x = sub.add_parser("export", help="write the generator as a float16 safetensors file for shipping")
    x.add_argument("--weights", required=True)
    x.add_argument("--out", required=True)
    x.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.command == "data":
        make_data(Path(args.out), args.train, args.test, args.seed)
    elif args.command == "export":
        digest = export(Path(args.weights), Path(args.out))
        print(json.dumps({"file": args.out, "bytes": Path(args.out).stat().st_size, "sha256": digest}, indent=2))
    else:
        result = evaluate(Path(args.data), Path(args.weights), seed=args.seed)
        print(json.dumps(result, indent=2))
    return 0

