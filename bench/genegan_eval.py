"""Judge the GeneGAN eyeglasses model on held-out synthetic pairs whose truth is known.

    python bench/genegan_eval.py [--faces artifacts/genegan/eval_faces.npz] [--pairs 200]
        [--weights FILE.safetensors] [--grid apps/glasses/eval_grid.png]

Pair i: A = eval face 2i wearing random glasses g_i (drawn by core.train.synthetic_glasses), B = eval face
2i+1 clean. Truth: "B with A's glasses" = B rendered with the same g_i at B's eyes; "A without
glasses" = A's clean face. None of these faces was seen in training (a disjoint DCGAN sample).

Reported (every output is the aligned 64x64 crop after the app's composite: only the eye band
changes, feathered; ``residual`` adds the model's change, ``direct`` pastes its output):
- the classifier's accuracy on the held-out faces (clean vs wearing random glasses);
- attribute success: share of "B with" judged wearing glasses, of "A without" judged bare;
- frame colour carried over: on the true frame pixels, the output's mean colour is closer to A's
  frame colour than to the frame colour of another random pair's A (chance 50%);
- identity: outside the eye band the output equals B exactly (count of changed pixels);
- mean absolute error (0..255) on the full image, the eye band and the glasses pixels, for both
  tasks, next to the baselines "unchanged", "paste A's (B's) eye band", "median-filtered eye band".
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.pipelines.glasses.layout import eye_band  # noqa: E402
from core.pipelines.glasses.swap import band_alpha, composite, glasses_probability, swap_crops  # noqa: E402
from core.train.synthetic_glasses import glasses_layers, random_glasses, render_glasses  # noqa: E402


def load_models(weights: str | None, classifier: str | None):
    import core.models as registry
    from core.weights import load_model

    def from_file(arch: str, path: str):
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(path, "pt") as f:
            config = json.loads((f.metadata() or {}).get("config", "{}"))
        return registry.load(arch, load_file(path), **config)

    model = from_file("genegan", weights) if weights else load_model("genegan.eyeglasses64", device="cpu")
    clf = from_file("glasses_classifier", classifier) if classifier else load_model("genegan.glasses_classifier64",
                                                                                      device="cpu")
    return model.float().eval(), clf.float().eval()


def make_pairs(faces: np.ndarray, landmarks: np.ndarray, n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(n):
        ia, ib = 2 * i, 2 * i + 1
        g = random_glasses(rng)
        a_glasses, _ = render_glasses(faces[ia], landmarks[ia, :2], g)
        b_truth, _ = render_glasses(faces[ib], landmarks[ib, :2], g)
        frame_b, lens_b = glasses_layers(landmarks[ib, :2], g)
        frame_a, lens_a = glasses_layers(landmarks[ia, :2], g)
        pairs.append(dict(
            a=a_glasses, a_clean=faces[ia], b=faces[ib], b_truth=b_truth, params=g,
            frame_b=frame_b > 0.5,
            glasses_b=(frame_b > 0.25) | ((lens_b > 0.5) & (g.tint_alpha > 0.1)),
            glasses_a=(frame_a > 0.25) | ((lens_a > 0.5) & (g.tint_alpha > 0.1)),
        ))
    return pairs


def l1(x: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None) -> float:
    d = np.abs(x.astype(np.float32) - y.astype(np.float32)).mean(-1)
    return float(d.mean() if mask is None else d[mask].mean())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--faces", default="artifacts/genegan/eval_faces.npz")
    p.add_argument("--pairs", type=int, default=200)
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--weights", help="a GeneGAN .safetensors (default: the manifest's genegan.eyeglasses64)")
    p.add_argument("--classifier", help="a classifier .safetensors (default: genegan.glasses_classifier64)")
    p.add_argument("--grid", default=None, help="write a picture grid (png) here")
    p.add_argument("--json", default=None, help="write the numbers as JSON here")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    start = time.time()
    data = np.load(args.faces)
    faces, landmarks = data["faces"], data["landmarks"]
    if len(faces) < 2 * args.pairs:
        raise SystemExit(f"{args.faces} holds {len(faces)} faces; {2 * args.pairs} are needed.")
    model, clf = load_models(args.weights, args.classifier)
    pairs = make_pairs(faces, landmarks, args.pairs, args.seed)
    band = eye_band()
    alpha = band_alpha()
    results: dict = {}

    # 1. The classifier on held-out faces: the clean faces vs the same faces wearing random glasses.
    clean = faces[: 2 * args.pairs]
    rng = np.random.default_rng(args.seed + 1)
    worn = np.stack([render_glasses(f, m[:2], random_glasses(rng))[0] for f, m in zip(clean, landmarks)])
    pc, pw = glasses_probability(clf, list(clean)), glasses_probability(clf, list(worn))
    results["classifier_accuracy"] = float(((pc < 0.5).sum() + (pw > 0.5).sum()) / (len(pc) + len(pw)))
    results["classifier_n"] = int(len(pc) + len(pw))

    # 2. The model and the baselines on every pair.
    outputs: dict[str, dict[str, list[np.ndarray]]] = {"b_with": {}, "a_without": {}}

    def add(task: str, name: str, image: np.ndarray) -> None:
        outputs[task].setdefault(name, []).append(image)

    for pair in pairs:
        out = swap_crops(model, pair["a"], pair["b"], 1.0)
        twice = swap_crops(model, pair["a"], pair["b"], 1.0, removal_passes=2)["a_without"]
        add("a_without", "GeneGAN (direct, 2 removal passes; the app's default)",
            composite(pair["a"], twice, None, "direct", alpha))
        for mode in ("residual", "direct"):
            add("b_with", f"GeneGAN ({mode})", composite(pair["b"], out["b_with"], out["b_rec"], mode, alpha))
            add("a_without", f"GeneGAN ({mode})", composite(pair["a"], out["a_without"], out["a_rec"], mode, alpha))
        add("b_with", "GeneGAN raw output (no paste-back)", np.clip(np.rint(out["b_with"]), 0, 255).astype(np.uint8))
        add("a_without", "GeneGAN raw output (no paste-back)",
            np.clip(np.rint(out["a_without"]), 0, 255).astype(np.uint8))
        add("b_with", "unchanged", pair["b"])
        add("a_without", "unchanged", pair["a"])
        add("b_with", "paste A's eye band", composite(pair["b"], pair["a"].astype(np.float32), None, "direct", alpha))
        add("a_without", "paste B's eye band",
            composite(pair["a"], pair["b"].astype(np.float32), None, "direct", alpha))
        for task, src in (("b_with", pair["b"]), ("a_without", pair["a"])):
            median = cv2.medianBlur(src, 5).astype(np.float32)
            add(task, "median-filtered eye band", composite(src, median, None, "direct", alpha))

    truth = {"b_with": [q["b_truth"] for q in pairs], "a_without": [q["a_clean"] for q in pairs]}
    glasses_mask = {"b_with": [q["glasses_b"] for q in pairs], "a_without": [q["glasses_a"] for q in pairs]}
    sources = {"b_with": [q["b"] for q in pairs], "a_without": [q["a"] for q in pairs]}
    table = {}
    for task in outputs:
        for name, images in outputs[task].items():
            row = {
                "full": np.mean([l1(o, t) for o, t in zip(images, truth[task])]),
                "eye band": np.mean([l1(o, t, band) for o, t in zip(images, truth[task])]),
                "glasses pixels": np.mean([l1(o, t, m) for o, t, m in zip(images, truth[task], glasses_mask[task])]),
                "changed outside band": int(sum((o != s)[~band].any(-1).sum() for o, s in zip(images, sources[task]))),
            }
            probs = glasses_probability(clf, images)
            row["judged with glasses"] = float((probs > 0.5).mean())
            table[(task, name)] = row

    # 3. Frame colour carried over (on the true frame pixels of "B with A's glasses").
    order = np.random.default_rng(args.seed + 2).permutation(len(pairs))
    others = [int(order[(np.where(order == i)[0][0] + 1) % len(pairs)]) for i in range(len(pairs))]
    colour = {}
    for name, images in outputs["b_with"].items():
        wins = []
        for i, (img, pair) in enumerate(zip(images, pairs)):
            mask = pair["frame_b"]
            if mask.sum() < 3:
                continue
            seen = img[mask].astype(np.float32).mean(0)
            own = np.array(pair["params"].frame_rgb, np.float32)
            other = np.array(pairs[others[i]]["params"].frame_rgb, np.float32)
            wins.append(np.linalg.norm(seen - own) < np.linalg.norm(seen - other))
        colour[name] = (float(np.mean(wins)), len(wins))

    # 4. Report.
    print(f"held-out pairs: {len(pairs)} (faces from {args.faces}); classifier accuracy "
          f"{results['classifier_accuracy']:.1%} on {results['classifier_n']} held-out faces\n")
    for task, title in (("b_with", "B with A's glasses"), ("a_without", "A without glasses")):
        print(f"### {title}\n")
        print("| method | L1 full | L1 eye band | L1 glasses px | judged wearing glasses "
              "| pixels changed outside band |")
        print("|---|---|---|---|---|---|")
        for (t, name), row in table.items():
            if t == task:
                print(f"| {name} | {row['full']:.2f} | {row['eye band']:.2f} | {row['glasses pixels']:.2f} | "
                      f"{row['judged with glasses']:.1%} | {row['changed outside band']} |")
        print()
    print("### Frame colour carried over (closer to A's frame colour than to another pair's A)\n")
    for name, (share, n) in colour.items():
        print(f"- {name}: {share:.1%} of {n} pairs")
    print(f"\n({time.time() - start:.0f} s)")

    if args.json:
        Path(args.json).write_text(json.dumps({
            **results, "pairs": len(pairs),
            "table": {f"{t}/{n}": row for (t, n), row in table.items()},
            "frame_colour": {n: s for n, (s, _) in colour.items()},
        }, indent=1, default=float))
    if args.grid:
        rows = []
        for i in range(8):
            pair = pairs[i]
            tiles = [pair["a"], pair["b"], pair["b_truth"], outputs["b_with"]["GeneGAN (residual)"][i],
                     outputs["b_with"]["GeneGAN raw output (no paste-back)"][i], pair["a_clean"],
                     outputs["a_without"]["GeneGAN (direct, 2 removal passes; the app's default)"][i],
                     outputs["a_without"]["GeneGAN raw output (no paste-back)"][i]]
            rows.append(np.concatenate(tiles, 1))
        grid = np.concatenate(rows, 0)
        cv2.imwrite(args.grid, grid[:, :, ::-1])  # 1:1 pixels (the crops are 64x64)
        print(f"grid -> {args.grid} (columns: A, B, truth B+glasses, ours (residual), ours raw, "
              "truth A-glasses, ours (direct, 2 passes), ours raw)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
