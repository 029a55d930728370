"""Face detectors side by side: this project's MTCNN (``core.faces``) and YuNet (the ``yuface`` wheel).

On the project's face photos (skimage astronaut and camera, the glasses and pulse examples), 100
LFW faces (``skimage.data.lfw_subset``, 25 px, upscaled) and DCGAN faces (``dcgan.faces64``, if
fetched), and on object photos (skimage, and the gradio package's example photos of animals and
a tower): faces found, landmark distance between the two detectors and to hand-placed points,
and time per 512x512 photo. YuNet is the detector the project used before; ``yuface`` has wheels
only up to CPython 3.11, so it is skipped where it is not installed.

Run: .venv/bin/python bench/face_detectors.py [--threads 1] [--repeats 10] [--dcgan 64]
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from core import faces  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# Hand-placed (x, y) of the five landmarks in LANDMARK_NAMES order, read off 6x zoomed crops.
HAND_LANDMARKS = {
    "astronaut": [[203, 101], [246, 103], [224, 125], [202, 140], [246, 140]],
    "a_photo_glasses.jpg": [[102, 51], [123, 52], [112, 62], [100, 70], [124, 70]],
}


def yunet_detector():
    """YuNet as ``core.faces`` used it (its OpenMP pool pinned to one thread), or None if not installed."""
    try:
        import yuface
    except ImportError:
        return None
    for lib in (Path(yuface.__file__).resolve().parent.parent / "yuface.libs").glob("libgomp*.so*"):
        ctypes.CDLL(str(lib)).omp_set_num_threads(1)

    def detect(image: Image.Image, min_score: float = 0.6) -> list[np.ndarray]:
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
        side = min(bgr.shape[:2])
        scale = 192 / side if side < 192 else 1.0  # as core.faces did for small inputs
        if scale != 1.0:
            import cv2

            bgr = cv2.resize(bgr, (round(bgr.shape[1] * scale), round(bgr.shape[0] * scale)),
                             interpolation=cv2.INTER_CUBIC)
        confidences, _, landmarks = yuface.detect(bgr, conf=min_score)
        order = np.argsort(-np.asarray(confidences, float))
        return [np.asarray(landmarks[i], float).reshape(5, 2) / scale for i in order]

    return detect


def mtcnn_detect(image: Image.Image) -> list[np.ndarray]:
    return [face.points() for face in faces.detect_faces(image)]


def rgb_image(array: np.ndarray) -> Image.Image:
    if array.dtype != np.uint8:
        array = (np.clip(array, 0, 1) * 255).astype(np.uint8)
    return Image.fromarray(array).convert("RGB")


def face_photos() -> dict[str, Image.Image]:
    import skimage.data

    photos = {"astronaut": rgb_image(skimage.data.astronaut()), "camera": rgb_image(skimage.data.camera())}
    for folder in ("apps/glasses/examples", "apps/pulse/examples"):
        for path in sorted((ROOT / folder).iterdir()):
            if path.suffix in (".jpg", ".png") and Image.open(path).size[0] >= 16:
                photos[path.name] = Image.open(path).convert("RGB")
    return photos


def object_photos() -> dict[str, Image.Image]:
    import gradio
    import skimage.data

    photos = {name: rgb_image(getattr(skimage.data, name)()) for name in
              ("coffee", "chelsea", "rocket", "clock", "coins", "brick", "grass", "gravel", "moon",
               "immunohistochemistry", "hubble_deep_field", "retina", "colorwheel")}
    left, right, _ = skimage.data.stereo_motorcycle()
    photos["stereo_motorcycle (left)"], photos["stereo_motorcycle (right)"] = rgb_image(left), rgb_image(right)
    assets = Path(gradio.__file__).parent
    for name in ("media_assets/images/lion.jpg", "media_assets/images/cheetah.jpg", "media_assets/images/cheetah1.jpg",
                 "media_assets/images/tower.jpg", "test_data/cheetah2.jpg"):
        photos[f"gradio {Path(name).stem}"] = Image.open(assets / name).convert("RGB")
    return photos


def generated_faces(count: int) -> list[Image.Image]:
    from core import weights
    from core.images import to_pil

    if not count or not weights.availability("dcgan.faces64")[0]:
        return []
    generator = weights.load_model("dcgan.faces64", device="cpu", dtype=torch.float32)
    with torch.no_grad():
        samples = generator(torch.randn(count, 100, 1, 1, generator=torch.Generator().manual_seed(0)))
    return [to_pil(sample) for sample in samples]


def seconds_per_photo(detect, image: Image.Image, repeats: int) -> tuple[float, float]:
    """Median wall and process-CPU seconds of one detection, after one warm-up."""
    detect(image)
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        detect(image)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def eye_distance(points: np.ndarray) -> float:
    return float(np.hypot(*(points[1] - points[0])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads for MTCNN")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--dcgan", type=int, default=64, help="DCGAN faces to add (0: none)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import skimage.data

    detectors = {"MTCNN": mtcnn_detect}
    yunet = yunet_detector()
    if yunet is not None:
        detectors["YuNet"] = yunet
    else:
        print("yuface is not installed here: YuNet is skipped.")

    photos, objects = face_photos(), object_photos()
    lfw = [rgb_image(face) for face in skimage.data.lfw_subset()[:100]]
    dcgan = generated_faces(args.dcgan)
    results = {name: {label: [detect(image) for image in images.values()]
                      for label, images in (("photos", photos), ("objects", objects))}
               | {"lfw": [detect(image) for image in lfw], "dcgan": [detect(image) for image in dcgan]}
               for name, detect in detectors.items()}

    print(f"\n| | {' | '.join(detectors)} |\n|---|{'---|' * len(detectors)}")

    def row(label, values):
        print(f"| {label} | {' | '.join(values)} |")

    row(f"project face photos with one face found (of {len(photos)})",
        [str(sum(len(f) == 1 for f in r["photos"])) for r in results.values()])
    row(f"LFW faces found (of {len(lfw)})", [str(sum(bool(f) for f in r["lfw"])) for r in results.values()])
    if dcgan:
        row(f"DCGAN faces found (of {len(dcgan)})", [str(sum(bool(f) for f in r["dcgan"])) for r in results.values()])
    row(f"object photos with a 'face' (of {len(objects)})",
        [str(sum(bool(f) for f in r["objects"])) for r in results.values()])
    for name in detectors:
        wrong = [label for label, found in zip(objects, results[name]["objects"]) if found]
        if wrong:
            print(f"  {name} finds a face on: {', '.join(wrong)}")
    for label, hand in HAND_LANDMARKS.items():
        found = {name: r["photos"][list(photos).index(label)] for name, r in results.items()}
        hand = np.asarray(hand, float)
        row(f"{label}: landmark error vs hand-placed, px mean / max (eye distance {eye_distance(hand):.0f} px)",
            [f"{np.hypot(*(f[0] - hand).T).mean():.1f} / {np.hypot(*(f[0] - hand).T).max():.1f}" if f else "not found"
             for f in found.values()])
    if yunet is not None:
        for label in ("photos", "lfw", "dcgan"):
            pairs = [(m[0], y[0]) for m, y in zip(results["MTCNN"][label], results["YuNet"][label]) if m and y]
            if not pairs:
                continue
            distances = np.array([np.hypot(*(m - y).T) for m, y in pairs])  # (faces, 5)
            relative = distances / np.array([[eye_distance(y)] for _, y in pairs])
            per_point = ", ".join(f"{n} {v:.2f}" for n, v in zip(faces.LANDMARK_NAMES, relative.mean(0)))
            print(f"MTCNN vs YuNet on {label} ({len(pairs)} faces both found): {distances.mean():.1f} px mean, "
                  f"{distances.max():.1f} px max; in eye distances per point: {per_point}")
    astronaut = photos["astronaut"]
    times = {name: seconds_per_photo(detect, astronaut, args.repeats) for name, detect in detectors.items()}
    row("time per 512x512 photo, ms wall / CPU (median)",
        [f"{wall * 1000:.0f} / {cpu * 1000:.0f}" for wall, cpu in times.values()])
    print(f"\n(torch threads for MTCNN: {args.threads}; YuNet's OpenMP pool: 1 thread; "
          f"ratio MTCNN / YuNet wall: {times['MTCNN'][0] / times['YuNet'][0]:.1f})" if yunet else "")


if __name__ == "__main__":
    main()
