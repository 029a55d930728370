"""Gradio round trip next to the direct call, for the offline models (used by bench/run.py).

The same photo through ``core`` directly and through the app's API with gradio_client on a
loopback server; the difference is upload, queue, pre/post-processing (PNG encode) and download.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def _median(fn, repeats):
    fn()  # warm-up (model load, first-shape costs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _interleaved_medians(first, second, repeats):
    """Medians of two calls timed alternately, so that load on this small machine hits both alike."""
    first(), second()  # warm-up (model load, first-shape costs)
    times = ([], [])
    for _ in range(max(repeats, 7)):
        for fn, bucket in zip((first, second), times):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def rows(repeats: int = 3, results: list | None = None) -> list[str]:
    """Markdown rows; ``results`` (if given) receives (label, direct seconds, round-trip seconds)."""
    from gradio_client import handle_file

    from apps.season.app import demo
    from core.images import load_image
    from core.pipelines.translate import translate_photo
    from tests.support.live import live_client

    photo = REPO_ROOT / "apps" / "season" / "examples" / "chelsea.jpg"
    out = ["## Gradio round trip vs direct call", "",
           "| call | direct (core) | through gradio_client | ratio |", "|---|---|---|---|"]
    cases = [("season, vintage, fast mode, 451x300 photo", "resize"), ("season, vintage, full resolution", "tiled")]
    with live_client(demo) as client:
        for label, mode in cases:
            direct_call = lambda: translate_photo("cyclegan.vintage", load_image(photo), mode=mode)  # noqa: E731
            api_call = lambda: client.predict(handle_file(str(photo)), model_id="cyclegan.vintage",  # noqa: E731
                                              mode=mode, api_name="/translate")
            direct, api = _interleaved_medians(direct_call, api_call, repeats)
            out.append(f"| {label} | {direct:.2f} s | {api:.2f} s | {api / direct:.2f}x |")
            if results is not None:
                results.append((label, direct, api))
            print(out[-1], flush=True)
    return out + ["", *floor_rows(repeats), ""]


def floor_rows(repeats: int = 3) -> list[str]:
    """What gradio_client costs around a handler that does no work: the round trip's floor."""
    import gradio as gr
    import numpy as np
    from gradio_client import handle_file
    from PIL import Image

    from tests.support.live import live_client

    photo = Image.open(REPO_ROOT / "apps" / "season" / "examples" / "chelsea.jpg").convert("RGB")
    with gr.Blocks() as demo:
        number, same = gr.Number(), gr.Number()
        number.change(lambda x: x, number, same, api_name="echo")
        image = gr.Image(type="pil")
        outputs = [gr.Image(type="pil", format="png") for _ in range(3)]
        image.change(lambda x: x, image, outputs[0], api_name="one_png")
        image.change(lambda x: (x, x, x), image, outputs, api_name="three_pngs")
    path = Path(tempfile.mkdtemp()) / "photo.png"
    photo.save(path)
    out = [f"Floor: the same client and server around handlers that do no work ({photo.width}x{photo.height} "
           "photo, PNG outputs like the apps'); the season app returns three images (before/after and the PNG).", "",
           "| handler | round trip |", "|---|---|"]
    with live_client(demo) as client:
        cases = [("a number in, the same number out", "/echo", (1,)),
                 ("the photo in, one PNG out", "/one_png", (handle_file(str(path)),)),
                 ("the photo in, three PNGs out", "/three_pngs", (handle_file(str(path)),))]
        for label, api_name, args in cases:
            seconds = _median(lambda: client.predict(*args, api_name=api_name), max(repeats, 7))
            out.append(f"| {label} | {seconds:.3f} s |")
            print(out[-1], flush=True)
    return out


if __name__ == "__main__":
    print("\n".join(rows()))
