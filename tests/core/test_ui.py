import os

import gradio as gr
import pytest

from core import ui
from core.weights import WeightsUnavailableError


def test_value_errors_become_gradio_errors():
    @ui.user_errors
    def handler(x):
        raise ValueError(f"bad value {x}")

    with pytest.raises(gr.Error) as err:
        handler(3)
    assert "bad value 3" in str(err.value)


def test_generator_handlers_are_wrapped_too():
    @ui.user_errors
    def stream():
        yield 1
        raise WeightsUnavailableError("x.y", "Weights for x.y are not available here.")

    gen = stream()
    assert next(gen) == 1
    with pytest.raises(gr.Error, match="not available here"):
        next(gen)


def test_other_exceptions_are_not_hidden():
    @ui.user_errors
    def broken():
        raise KeyError("bug")

    with pytest.raises(KeyError):
        broken()


def test_gpu_out_of_memory_becomes_a_clear_message_and_frees_the_cache(monkeypatch):
    import torch

    emptied = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (3 * 2**30, 24 * 2**30))

    @ui.user_errors
    def handler():
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    @ui.user_errors
    def stream():
        yield 1
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    for call in (handler, lambda: list(stream())):
        with pytest.raises(gr.Error) as err:
            call()
        assert err.value.title == "Out of GPU memory"
        assert str(err.value.message).startswith("The GPU ran out of memory for this job (3.0 GiB free now). "
                                                 "Try a smaller image")
    assert emptied == [True, True]


def test_mps_out_of_memory_is_recognised_and_other_runtime_errors_are_not_hidden():
    @ui.user_errors
    def mps():
        raise RuntimeError("MPS backend out of memory (MPS allocated: 17.00 GB, other allocations: 1.00 GB)")

    @ui.user_errors
    def bug():
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(gr.Error, match="The GPU ran out of memory for this job"):
        mps()
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied") as err:
        bug()
    assert not isinstance(err.value, gr.Error)


def test_client_reads_the_out_of_memory_message():
    import torch
    from gradio_client.exceptions import AppError

    from tests.support.live import live_client

    @ui.user_errors
    def generate(text):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    with gr.Blocks() as demo:
        box = gr.Textbox()
        gr.Button().click(generate, box, box, api_name="generate")
    with live_client(demo) as client:
        with pytest.raises(AppError) as err:
            client.predict("a cat", api_name="/generate")
    assert "The GPU ran out of memory for this job" in str(err.value)
    assert "Try a smaller image" in str(err.value)


def test_model_card_lists_licence_and_availability():
    text = ui.model_card_markdown(["dcgan.faces64", "stylegan2.ffhq1024"])
    assert "DigiFace-1M" in text and "Non-commercial".lower() in text.lower()
    assert "python -m core.weights fetch stylegan2.ffhq1024" in text or "| yes |" in text


def test_missing_weights_message_says_how_to_get_them():
    text = ui.missing_weights_message("lama.big_lama")
    assert "LaMa" in text and "python -m core.weights fetch lama.big_lama" in text and "GANHUB_WEIGHTS_DIR" in text


def test_launch_flags():
    args = ui.parse_launch_args(["--host", "0.0.0.0", "--port", "9000", "--share", "--root-path", "/x"])
    assert (args.host, args.port, args.share, args.root_path) == ("0.0.0.0", 9000, True, "/x")


def test_heavy_handlers_share_one_device_slot():
    import threading
    import time

    active, peak = [0], [0]
    lock = threading.Lock()

    def work():
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1

    @ui.heavy
    def plain():
        work()

    @ui.heavy
    def streaming():
        work()
        yield 1

    threads = [threading.Thread(target=plain) for _ in range(3)]
    threads += [threading.Thread(target=lambda: list(streaming())) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 1


def test_image_input_gives_clear_messages_and_rgb(tmp_path):
    from gradio.data_classes import ImageData
    from PIL import Image

    component = ui.ImageInput(label="Photo", elem_id="photo")
    assert component.get_block_name() == "image"  # the frontend renders it as gr.Image
    props = component.get_config()
    assert props["label"] == "Photo" and props["elem_id"] == "photo"  # constructor arguments reach the page
    bad = tmp_path / "notes.png"
    bad.write_text("hello")
    with pytest.raises(gr.Error, match="not an image"):
        component.preprocess(ImageData(path=str(bad), orig_name="notes.png"))
    good = tmp_path / "p.png"
    Image.new("P", (3, 2)).save(good)
    image = component.preprocess(ImageData(path=str(good), orig_name="p.png"))
    assert image.mode == "RGB" and image.size == (3, 2)
    masks = ui.MaskInput()
    assert masks.get_block_name() == "image"
    assert masks.preprocess(ImageData(path=str(good), orig_name="p.png")).mode == "RGBA"


def test_missing_diffusers_pipeline_advice_is_about_the_hub_cache():
    text = ui.missing_weights_message("diffusers.sd_turbo")
    assert "python -m core.weights fetch diffusers.sd_turbo" in text and "HF_HOME" in text
    assert "GANHUB_WEIGHTS_DIR" not in text  # a whole pipeline cannot be one safetensors file


def test_image_outputs_are_written_to_gradio_cache_atomically(tmp_path):
    # gradio 6.31 rewrites a content-addressed cache file in place; two users with the same
    # output then race (one download read the file while the other request truncated it).
    import threading
    import time

    import numpy as np
    from gradio import processing_utils
    from PIL import Image

    assert processing_utils.save_pil_to_cache is ui._save_pil_to_cache_atomically
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


def test_editors_check_every_part_before_gradio_decodes_it(tmp_path):
    import io

    from gradio.components.image_editor import EditorData, EditorDataBlobs
    from gradio.data_classes import FileData
    from PIL import Image

    bomb = io.BytesIO()
    Image.new("1", (15000, 15000)).save(bomb, "PNG")  # a few KB declaring 225 MP
    editor, pad = ui.ImageEditor(type="numpy", image_mode="RGBA"), ui.Sketchpad(type="numpy")
    assert editor.get_block_name() == pad.get_block_name() == "imageeditor"  # gradio's own frontend
    editor.blob_storage["canvas"] = EditorDataBlobs(background=None, layers=[bomb.getvalue()], composite=None)
    with pytest.raises(gr.Error, match="layer: The image is too large"):
        editor.preprocess(EditorData(id="canvas"))  # the canvas's own upload path (blobs)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(gr.Error, match="composite: The file empty.png is empty"):
        pad.preprocess(EditorData(composite=FileData(path=str(empty))))
    good = tmp_path / "good.png"
    Image.new("RGB", (4, 3), "white").save(good)
    value = pad.preprocess(EditorData(background=FileData(path=str(good))))
    assert value["background"].shape == (3, 4, 4)
