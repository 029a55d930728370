"""Measure the latent lab on the DCGAN faces: directions, walks and the three inversion methods.

    python bench/latent_eval.py directions [--samples 300] [--alphas 1 1.5 2]
    python bench/latent_eval.py walk [--pairs 50] [--frames 16]
    python bench/latent_eval.py inversion [--samples 100] [--steps 200] [--encoder FILE]

Every sample here is held out: seeds from 2,000,000 (the shipped directions used seeds
1,000,000-1,002,999, the encoder's training pool torch seed 0).

- ``directions``: for each attribute, the held-out faces that do NOT have it (P(glasses) <= 0.5;
  below the median of the direction's own samples for the continuous ones) get ``alpha * d``;
  flip rate = share that has it afterwards (its own measurement); own change = mean change of the
  measurement; outside = mean absolute pixel change (0-255) outside the attribute's region of
  the 64 px image (eye band, hair, skin; the whole image for yaw and mouth width); others = mean
  |change| of every other measurement in units of its standard deviation over the samples.
- ``walk``: lerp vs slerp between random pairs in z: neighbour-frame pixel distance (mean, and
  its coefficient of variation along the walk) and the latent norm at the midpoint.
- ``inversion``: pixel error (mean absolute, 0-255) and latent error (|z_hat - z| / |z|) on
  ``--samples`` generator faces, and pixel error on the project's face photos, with the time per face.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.pipelines.latent import attributes as attrs  # noqa: E402
from core.pipelines.latent import inversion as inv  # noqa: E402
from core.pipelines.latent import space as lab  # noqa: E402
from core.pipelines.latent.lab import role  # noqa: E402

DIRECTIONS = REPO / "apps" / "latent" / "data" / "directions_dcgan_faces64.safetensors"
PHOTOS = ["apps/pulse/examples/astronaut_photo.jpg", "apps/glasses/examples/a_photo_glasses.jpg",
          "apps/glasses/examples/b_photo.jpg", "apps/season/examples/chelsea.jpg"]
HELD_OUT = 2_000_000


def models():
    from core.weights import load_model

    gen = lab.LatentGenerator(load_model("dcgan.faces64", device="cpu", dtype=torch.float32), "dcgan.faces64", batch=64)
    return gen, load_model(role("classifier"), device="cpu", dtype=torch.float32)


def eval_directions(args) -> None:
    gen, classifier = models()
    directions, info = attrs.load_directions(DIRECTIONS, "dcgan.faces64")
    z = gen.z_from_seeds(range(HELD_OUT, HELD_OUT + args.samples))
    images = lab.to_uint8(gen.decode(z))
    before = attrs.measure(images, classifier)
    spread = {k: np.nanstd(v) for k, v in before.items()}
    rows = []
    for name in attrs.ATTRIBUTES:
        median = info["attributes"][name]["median"]
        reference = np.array([median])
        negatives = np.flatnonzero(~np.isnan(before[name]) & ~attrs.has_attribute(name, before[name], reference))
        region = attrs.ATTRIBUTE_REGION.get(name)
        outside = ~attrs.region_mask(region) if region else np.ones((64, 64), bool)
        for alpha in args.alphas:
            moved = lab.to_uint8(gen.decode(z[negatives] + alpha * directions[name]))
            after = attrs.measure(moved, classifier)
            found = ~np.isnan(after[name])
            flips = attrs.has_attribute(name, after[name][found], reference).mean()
            change = np.abs(moved.astype(np.float32) - images[negatives]).mean(-1)
            others = {k: float(np.nanmean(np.abs(after[k] - before[k][negatives])) / spread[k])
                      for k in attrs.ATTRIBUTES if k != name}
            rows.append({"attribute": name, "alpha": alpha, "faces": len(negatives), "faces_found": int(found.sum()),
                         "flip_rate": float(flips), "own_change": float(np.nanmean(after[name] - before[name][negatives])),
                         "pixel_change_outside": float(change[:, outside].mean()),
                         "pixel_change_inside": float(change[:, ~outside].mean()) if region else None,
                         "others_in_std": others})
            print(json.dumps(rows[-1]), flush=True)
    print("\n| attribute | alpha | faces | flip rate | own change | pixel change outside (inside) its region | "
          "other measurements, mean abs change in std |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        inside = f" ({r['pixel_change_inside']:.1f})" if r["pixel_change_inside"] is not None else " (whole image)"
        others = ", ".join(f"{k} {v:.2f}" for k, v in r["others_in_std"].items())
        print(f"| {r['attribute']} | {r['alpha']:g} | {r['faces']} | {r['flip_rate']:.0%} | {r['own_change']:+.3g} | "
              f"{r['pixel_change_outside']:.1f}{inside} | {others} |")


def eval_walk(args) -> None:
    gen, _ = models()
    results = {"lerp": [], "slerp": []}
    for i in range(args.pairs):
        a, b = gen.z_from_seeds([HELD_OUT + 2 * i, HELD_OUT + 2 * i + 1])
        for method in results:
            path = lab.interpolate(a, b, args.frames, method)
            frames = lab.to_uint8(gen.decode(path))
            s = lab.smoothness(frames)
            s["mid_norm"] = float(path[args.frames // 2].norm() / ((a.norm() + b.norm()) / 2))
            results[method].append(s)
    print(f"\n{args.pairs} pairs, {args.frames} frames\n\n| method | mean step (0-255) | step CV | max step | "
          "path length | midpoint norm / endpoint norm |\n|---|---|---|---|---|---|")
    for method, rows in results.items():
        mean = {k: np.mean([r[k] for r in rows]) for k in rows[0]}
        print(f"| {method} | {mean['mean_step']:.2f} | {mean['step_cv']:.3f} | {mean['max_step']:.2f} | "
              f"{mean['path_length']:.1f} | {mean['mid_norm']:.3f} |")


def eval_inversion(args) -> None:
    import core.models as registry
    from core.images import load_image
    from core.weights import load_model, read_safetensors

    gen, classifier = models()
    configs = [(m, 0.0) for m in args.methods] + [(m, args.feature_weight) for m in args.with_features]
    encoder = None
    if any(m != "optimise" for m, _ in configs):
        encoder = (registry.load("latent_encoder", read_safetensors(args.encoder), **json.loads(args.config))
                   if args.encoder else load_model("latent.encoder_dcgan64", device="cpu", dtype=torch.float32))
    features = inv.classifier_features(classifier)
    z = gen.z_from_seeds(range(HELD_OUT, HELD_OUT + args.samples))
    target = lab.from_uint8(lab.to_uint8(gen.decode(z)))  # 8-bit, like an uploaded image
    photos = []
    for name in PHOTOS:
        try:
            photos.append((name, inv.target_from_crop(inv.align_photo(load_image(REPO / name), gen))))
        except ValueError as e:
            print(f"skipped {name}: {e}")
    rows = []
    for method, weight in configs:
        options = dict(encoder=encoder, steps=args.steps, restarts=args.restarts, features=features,
                       feature_weight=weight)
        result = inv.invert(gen, target, method, **options)
        latent_error = ((result.latent - z).norm(dim=1) / z.norm(dim=1)).numpy()
        photo_errors, photo_seconds = [], []
        for _, photo in photos:
            r = inv.invert(gen, photo, method, **options)
            photo_errors.append(float(r.pixel_error[0]))
            photo_seconds.append(r.seconds)
        rows.append({"method": method, "feature_weight": weight, "pixel_error": float(result.pixel_error.mean()),
                     "pixel_error_p90": float(np.percentile(result.pixel_error, 90)),
                     "latent_error": float(latent_error.mean()), "seconds_per_face": result.seconds / args.samples,
                     "photo_pixel_error": photo_errors, "photo_seconds": float(np.mean(photo_seconds))})
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n| method | generator faces ({args.samples}): pixel error (p90) | latent error | s/face (batched) | "
          f"photos ({len(photos)}): pixel error, each | s/photo |\n|---|---|---|---|---|---|")
    for r in rows:
        label = r["method"] + (f" + features x{r['feature_weight']:g}" if r["feature_weight"] else "")
        each = ", ".join(f"{e:.1f}" for e in r["photo_pixel_error"])
        print(f"| {label} | {r['pixel_error']:.1f} ({r['pixel_error_p90']:.1f}) | {r['latent_error']:.3f} | "
              f"{r['seconds_per_face']:.2f} | {np.mean(r['photo_pixel_error']):.1f}: {each} | {r['photo_seconds']:.1f} |")
    baseline = inv.pixel_error(gen.decode(torch.zeros(1, gen.nz)).expand(len(target), -1, -1, -1), target).mean()
    print(f"\nbaseline: G(0) (the 'mean face') against every target: pixel error {baseline:.1f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    d = sub.add_parser("directions")
    d.add_argument("--samples", type=int, default=300)
    d.add_argument("--alphas", type=float, nargs="+", default=[1.0, 1.5, 2.0])
    w = sub.add_parser("walk")
    w.add_argument("--pairs", type=int, default=50)
    w.add_argument("--frames", type=int, default=16)
    i = sub.add_parser("inversion")
    i.add_argument("--samples", type=int, default=100)
    i.add_argument("--steps", type=int, default=100)
    i.add_argument("--methods", nargs="+", default=list(inv.INVERSION_METHODS))
    i.add_argument("--with-features", nargs="*", default=["hybrid"], help="methods also run with the feature loss")
    i.add_argument("--restarts", type=int, default=2)
    i.add_argument("--feature-weight", type=float, default=1.0)
    i.add_argument("--encoder", help="encoder weights (default: the shipped latent.encoder_dcgan64)")
    i.add_argument("--config", default='{"nz": 100, "width": 16}')
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    started = time.time()
    {"directions": eval_directions, "walk": eval_walk, "inversion": eval_inversion}[args.what](args)
    print(f"\n({time.time() - started:.0f} s, {args.threads} thread(s), {time.strftime('%Y-%m-%d')})")


if __name__ == "__main__":
    main()
