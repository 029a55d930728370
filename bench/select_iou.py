"""GrabCut (and Segment Anything, where its weights are here) against the hand-made masks of the
inpainting app's example photos: intersection over union per prompt kind.

    python bench/select_iou.py            # prints a Markdown table

Prompts are derived from each hand-made mask: ``box`` = its bounding box grown by 8 px, ``click``
= one include point at the mask's innermost pixel (largest distance to its edge), ``box+click``
both. The hand-made masks are loose (painted with a brush), so a perfect selector scores below 1.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.pipelines import select  # noqa: E402
from core.pipelines.select import iou  # noqa: E402
from core.pipelines.select_prompts import Prompts  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "apps" / "inpaint" / "examples"


def prompts_for(mask: np.ndarray, margin: int = 8) -> dict[str, Prompts]:
    ys, xs = np.nonzero(mask)
    height, width = mask.shape
    box = (max(0, xs.min() - margin), max(0, ys.min() - margin), min(width, xs.max() + 1 + margin),
           min(height, ys.max() + 1 + margin))
    distance = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    y, x = np.unravel_index(int(np.argmax(distance)), mask.shape)
    click = ((float(x), float(y)),)
    return {"box": Prompts(box=box), "click": Prompts(include=click), "box+click": Prompts(include=click, box=box)}


def main() -> int:
    from core.pipelines.inpaint_models import selector_id
    from core.weights import weights_present

    SAM_ID = selector_id()

    methods = ["grabcut"] + (["sam"] if weights_present(SAM_ID) else [])
    warm_up = Image.open(EXAMPLES / "coffee.jpg").convert("RGB")
    for method in methods:  # first-call costs (imports, model load) are not part of a selection's time
        select.run(warm_up, Prompts(box=(300, 50, 450, 350)), select.Settings(method))
    print("| photo | prompt | " + " | ".join(f"{m} IoU | {m} s" for m in methods) + " |")
    print("|---|---|" + "---|---|" * len(methods))
    for mask_path in sorted(EXAMPLES.glob("*_mask.png")):
        photo = Image.open(EXAMPLES / mask_path.name.replace("_mask.png", ".jpg")).convert("RGB")
        truth = np.asarray(Image.open(mask_path).convert("L")) > 127
        for kind, prompts in prompts_for(truth).items():
            cells = []
            for method in methods:
                start = time.perf_counter()
                selected = select.run(photo, prompts, select.Settings(method)).mask
                cells += [f"{iou(selected, truth):.3f}", f"{time.perf_counter() - start:.2f}"]
            print(f"| {mask_path.name.replace('_mask.png', '')} ({photo.width}x{photo.height}) | {kind} | "
                  + " | ".join(cells) + " |")
    if "sam" not in methods:
        print(f"\n(Segment Anything `{SAM_ID}` is not on this machine: GrabCut only.)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
