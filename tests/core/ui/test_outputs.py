"""How output images are shipped: ``core.ui.outputs``."""

import os

from core.ui.outputs import save_pil_to_cache_atomically


def test_image_outputs_are_written_to_gradio_cache_atomically(tmp_path):
    # gradio 6.31 rewrites a content-addressed cache file in place, so two users with the same
    # output race: one download can read the file while the other request truncates it.
    import threading
    import time

    import numpy as np
    from gradio import processing_utils
    from PIL import Image

    assert processing_utils.save_pil_to_cache is save_pil_to_cache_atomically
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    path = processing_utils.save_pil_to_cache(image, str(tmp_path), format="png")
    size = len(open(path, "rb").read())
    assert np.array_equal(np.asarray(Image.open(path)), np.asarray(image))
    first = os.stat(path)
    time.sleep(0.02)
    assert processing_utils.save_pil_to_cache(image, str(tmp_path), format="png") == path
    again = os.stat(path)
    assert (again.st_ino, again.st_size) == (first.st_ino, first.st_size)  # the same content is not written again
    # ... but it is a fresh result: delete_cache ages files by ctime and must not delete it on the first one's clock
    assert again.st_ctime_ns > first.st_ctime_ns

    # Concurrent identical outputs while a reader keeps downloading: never a short read.
    os.remove(path)
    stop, short_reads = threading.Event(), []

    def writer():
        while not stop.is_set():
            processing_utils.save_pil_to_cache(image, str(tmp_path), format="png")
            try:
                os.remove(path)  # force real rewrites
            except FileNotFoundError:
                pass

    def reader():
        for _ in range(400):
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                continue
            if len(data) != size:
                short_reads.append(len(data))

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    reader()
    stop.set()
    for t in threads:
        t.join()
    assert short_reads == []
    assert not list(tmp_path.rglob("*.part"))


def test_streamed_previews_are_jpeg_files_at_display_size_in_gradio_cache(tmp_path, monkeypatch):
    from PIL import Image

    from core.ui import preview_file

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    photo = Image.new("RGB", (2048, 1024), (200, 40, 40))
    photo.info["parameters"] = "not in a preview"
    path = preview_file(photo, side=512)
    assert path.startswith(str(tmp_path)) and path.endswith(".jpeg")  # gradio serves a cached file as it is
    shown = Image.open(path)
    assert shown.format == "JPEG" and shown.size == (512, 256)
    assert Image.open(preview_file(Image.new("RGB", (64, 64)))).size == (64, 64)  # never enlarged


def test_only_the_apps_page_is_sent_previews():
    from types import SimpleNamespace

    from core.ui import sees_previews

    # gradio's frontend sends x-gradio-user "app"; gradio_client "api"; its MCP server "mcp"
    assert sees_previews(SimpleNamespace(headers={"x-gradio-user": "app"}))
    for caller in ({"x-gradio-user": "api"}, {"x-gradio-user": "mcp"}, {}):
        assert not sees_previews(SimpleNamespace(headers=caller))
    assert not sees_previews(None)  # an in-process call takes the final result


def test_gradios_frontend_still_sends_the_header_that_marks_its_page():
    import re
    from pathlib import Path

    import gradio

    assets = Path(gradio.__file__).parent / "templates" / "frontend" / "assets"
    marked = [p.name for p in assets.glob("*.js") if re.search(r"\"x-gradio-user\":\W?app\W", p.read_text("utf-8"))]
    assert marked, "gradio's page no longer sends x-gradio-user: app; core.ui.sees_previews must learn its new mark"


def test_contact_sheet_places_each_row_at_its_height_with_a_caption_band():
    import numpy as np
    import pytest
    from PIL import Image

    from core.ui.outputs import contact_sheet

    rng = np.random.default_rng(1)
    crop = Image.fromarray(rng.integers(0, 255, (192, 192, 3), dtype=np.uint8))
    wide = Image.fromarray(rng.integers(0, 255, (30, 60, 3), dtype=np.uint8))
    sheet = contact_sheet([[(crop, "first"), (crop, "second")], [(wide, "mask")]], heights=(192, 64), gap=8,
                          caption_height=22)
    assert sheet.mode == "RGB" and sheet.size == (192 + 8 + 192, 22 + 192 + 8 + 22 + 64)
    pixels = np.asarray(sheet)
    assert (pixels[22:214, :192] == np.asarray(crop)).all()  # a tile already at its row's height keeps its pixels
    assert (pixels[22:214, 200:392] == np.asarray(crop)).all()
    assert (pixels[22:214, 192:200] == 255).all()  # the gap stays white
    assert (pixels[:22, :192] < 128).any() and (pixels[:22, :192] == 255).mean() > 0.5  # dark caption text on white
    assert (pixels[244:, :128] != 255).any(-1).mean() > 0.9  # the 60x30 image, scaled to 128x64
    assert (pixels[244:, 128:] == 255).all()
    sheet = contact_sheet([[(crop, "only")], []])  # an empty row (no masks) is left out
    assert sheet.size == (192, 22 + 192)
    with pytest.raises(ValueError, match="at least one image"):
        contact_sheet([[], []])


def test_a_jobs_output_images_are_encoded_at_the_same_time_and_shipped_unchanged(monkeypatch):
    # gradio 6.31 encodes a job's outputs one after another; Pillow releases the GIL while encoding,
    # so the kit writes them into the cache in parallel threads first. What the client gets is the same.
    import threading
    import time

    import gradio as gr
    import numpy as np
    from gradio import processing_utils
    from PIL import Image

    from core import ui  # noqa: F401  (installs the kit's gradio fixes)
    from tests.support.live import live_client

    rng = np.random.default_rng(1)
    first, second = (Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)) for _ in range(2))
    first.info["parameters"] = "seed: 7"
    spans, save = [], processing_utils.save_pil_to_cache

    def slow_save(img, cache_dir, *args, **kwargs):
        start = time.monotonic()
        time.sleep(0.3)
        path = save(img, cache_dir, *args, **kwargs)
        spans.append((start, time.monotonic(), threading.get_ident()))
        return path

    monkeypatch.setattr(processing_utils, "save_pil_to_cache", slow_save)
    with gr.Blocks() as demo:
        trigger = gr.Number()
        a, b, notes = gr.Image(format="png"), gr.Image(format="png"), gr.Markdown()
        trigger.change(lambda _: (first, second, "done"), trigger, [a, b, notes], api_name="two")
        trigger.change(lambda _: first, trigger, a, api_name="one")
    with live_client(demo) as client:
        path_a, path_b, text = client.predict(1, api_name="/two")
        assert len(spans) == 2 and max(s for s, _, _ in spans) < min(e for _, e, _ in spans)  # overlapping
        assert spans[0][2] != spans[1][2]
        spans.clear()
        client.predict(1, api_name="/one")
        assert len(spans) == 1  # one image: gradio's own path
        assert text == "done"
        for path, expected in ((path_a, first), (path_b, second)):  # downloaded files: read before the client closes
            with Image.open(path) as shipped:
                assert shipped.format == "PNG"
                assert np.array_equal(np.asarray(shipped.convert("RGB")), np.asarray(expected))
                assert shipped.text == ({"parameters": "seed: 7"} if expected is first else {})


def test_an_output_image_that_cannot_be_encoded_fails_as_in_gradio_and_the_app_keeps_serving():
    import asyncio

    import gradio as gr
    import pytest
    from gradio.exceptions import ComponentProcessingError
    from gradio_client.exceptions import AppError
    from PIL import Image

    from core import ui  # noqa: F401  (installs the kit's gradio fixes)
    from tests.support.live import live_client

    good, cmyk = Image.new("RGB", (8, 8), "red"), Image.new("CMYK", (8, 8))  # PNG cannot hold CMYK

    with gr.Blocks() as demo:
        trigger = gr.Number()
        a, b = gr.Image(format="png"), gr.Image(format="png")
        trigger.change(lambda x: (good, cmyk if x else good), trigger, [a, b], api_name="pair")
    pair = next(f for f in demo.fns.values() if f.api_name == "pair")
    with pytest.raises(ComponentProcessingError, match="CMYK"):  # gradio's own error, naming the output
        asyncio.run(demo.postprocess_data(pair, [good, cmyk], None))
    with live_client(demo) as client:
        with pytest.raises(AppError):
            client.predict(1, api_name="/pair")
        first, second = client.predict(0, api_name="/pair")  # the server still serves the next job
        assert Image.open(first).size == Image.open(second).size == (8, 8)
