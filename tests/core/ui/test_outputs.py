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
