"""bench/round_trip.py's keep-alive client: a complete call (uploads, queue, the result's files)."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from PIL import Image

from bench.round_trip import KeepAliveClient
from tests.support.live import live_client


def test_keep_alive_client_makes_the_whole_call_and_reports_failures(tmp_path):
    import gradio as gr

    def mirror(image, times):
        if times < 0:
            raise gr.Error("times must be >= 0")
        return [image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)] * int(times), f"{int(times)} mirrored"

    with gr.Blocks() as demo:
        image, times = gr.Image(type="pil"), gr.Number()
        gallery, notes = gr.Gallery(format="png"), gr.Markdown()
        gr.Button().click(mirror, [image, times], [gallery, notes], api_name="mirror")
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8))
    path = tmp_path / "photo.png"
    photo.save(path)
    with live_client(demo) as client, contextlib.closing(KeepAliveClient(client.src)) as http:
        gallery_out, notes_out = http.predict("/mirror", {"image": path, "times": 2})
        assert notes_out == "2 mirrored" and len(gallery_out) == 2
        for item in gallery_out:  # each file downloaded: the PNG bytes of the mirrored photo
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(item["image"]))), np.asarray(photo)[:, ::-1])
        with pytest.raises(RuntimeError, match="times must be >= 0"):
            http.predict("/mirror", {"image": path, "times": -1})
