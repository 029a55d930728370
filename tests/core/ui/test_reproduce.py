"""The gradio_client call that reproduces a result: written into notes and PNGs, read back safely."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from core.ui.reproduce import Call, InputFile, files, parse_call, read_call, stored_settings


def test_call_code_is_the_exact_gradio_client_call():
    call = Call("/translate", {**files("image"), "model_id": "cyclegan.vintage", "mode": "tiled"})
    assert call.code() == ("client.predict(image=handle_file('image.png'), model_id='cyclegan.vintage', "
                           "mode='tiled', api_name='/translate')")
    assert call.script().startswith("from gradio_client import Client, handle_file\nclient = Client(")
    assert call.markdown().rstrip().endswith(call.code() + "\n```")


def test_stamped_png_round_trips(tmp_path):
    call = Call("/upsample", {**files("image"), "size": 16, "eps": 0.002, "seed": 123456, "face": 0,
                              "prompt": 'a "quoted", multi-line\nprompt: with colons', "fast": True, "none": None})
    from core.ui import encode_image

    path = tmp_path / "result.png"
    path.write_bytes(encode_image(call.stamp(Image.new("RGB", (8, 8))), "png"))  # what the apps serve
    assert read_call(path) == call
    assert Image.open(path).info["parameters"] == call.code()


def test_an_editor_call_with_files_inside_round_trips(tmp_path):
    # sketch2photo's /sketch_to_photo_pad and inpaint's /inpaint_editor take the editor's parts as files
    call = Call("/sketch_to_photo_pad", {"pad": {"background": None, "layers": [InputFile("layer.png")],
                                                 "composite": InputFile("drawing.png")}, "seed": -1})
    image = call.stamp(Image.new("RGB", (4, 4)))
    assert read_call(image) == call
    assert stored_settings(read_call(image), ("sketch_to_photo_pad",), ["seed"]) == [-1]


def test_stamp_can_leave_an_apps_own_parameters_text():
    image = Image.new("RGB", (4, 4))
    image.info["parameters"] = "a1111 text"
    Call("/generate", {"seed": 1}).stamp(image, parameters=False)
    assert image.info["parameters"] == "a1111 text" and "seed=1" in image.info["gradio_client"]


@pytest.mark.parametrize("text, message", [
    ("__import__('os').system('echo hacked')", "not a gradio_client call"),
    ("client.predict(x=__import__('os').system('echo hacked'), api_name='/x')", "'x' is not a plain value"),
    ("client.predict(handle_file(open('/etc/passwd').read()), api_name='/x')", "keyword arguments"),
    ("client.predict(x=handle_file(open('/etc/passwd').read()), api_name='/x')", "'x' is not a plain value"),
    ("client.predict(x={'c': handle_file(open('/etc/passwd').read())}, api_name='/x')", "'x' is not a plain value"),
    ("client.predict(x=[handle_file('a.png', extra=1)], api_name='/x')", "'x' is not a plain value"),
    ("client.predict(x=[handle_file(1)], api_name='/x')", "'x' is not a plain value"),
    ("client.predict(x={**y}, api_name='/x')", "'x' is not a plain value"),
    ("client.predict(x=1)", "names no api_name"),
    ("client.predict(x=1, api_name='/x'", "not a gradio_client call"),
    ("client.predict(x='" + "a" * 70_000 + "', api_name='/x')", "too long"),
    ("(" * 500 + ")" * 500, "not a gradio_client call"),
])
def test_parse_call_accepts_only_literals(text, message):
    with pytest.raises(ValueError, match=message):
        parse_call(text)


def test_read_call_explains_a_png_without_settings(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "plain.png")
    with pytest.raises(ValueError, match="carries no settings"):
        read_call(tmp_path / "plain.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="Could not read this file"):
        read_call(tmp_path / "junk.png")


def test_settings_come_from_the_right_endpoint_only():
    call = Call("/inpaint_editor", {"editor": {"background": InputFile("photo.png")}, "method": "telea",
                                    "dilation": 4, "margin": [1, 2]})
    assert stored_settings(call, ("inpaint", "inpaint_editor"), ["method", "dilation", "strategy", "margin"]) == [
        "telea", 4, None, None]  # absent and non-plain values are left to the UI
    with pytest.raises(ValueError, match="made by `/inpaint_editor`, not by `/translate`"):
        stored_settings(call, ("translate",), ["method"])


def test_one_call_stamps_a_result_with_every_argument_as_used(tmp_path):
    import numpy as np

    from core import ui
    from core.ui import encode_image

    photo, tile = Image.new("RGB", (8, 8)), Image.new("RGB", (4, 4))
    editor = {"background": np.zeros((4, 4, 4), np.uint8), "layers": [np.zeros((4, 4, 4), np.uint8)], "composite": None}
    outputs = ui.stamp_result("extend_canvas", (photo, [(tile, "restart 1"), tile], "Done.", {"seed": 7}),
                              png_at=(0, 1), notes_at=2, image=np.zeros((4, 4, 3), np.uint8), editor=editor,
                              left=np.int64(16), strength=np.float32(0.5), boxes=[(1, 2, 3, 4)], method="auto", seed=7)
    expected = Call("/extend_canvas", {
        "image": InputFile("image.png"),
        "editor": {"background": InputFile("editor_background.png"), "layers": [InputFile("editor_layer_1.png")],
                   "composite": None},
        "left": 16, "strength": 0.5, "boxes": [(1, 2, 3, 4)], "method": "auto", "seed": 7})
    path = tmp_path / "result.png"
    path.write_bytes(encode_image(outputs[0], "png"))
    assert read_call(path) == expected  # every argument, in order, as plain values
    assert type(read_call(path).arguments["left"]) is int
    gallery = outputs[1]
    assert isinstance(gallery, list) and gallery[0][1] == "restart 1"
    assert gallery[0][0].info["gradio_client"] == gallery[1].info["gradio_client"] == expected.code()
    assert outputs[2] == "Done.\n\n" + expected.markdown() and outputs[3] == {"seed": 7}


def test_stamp_result_refuses_what_a_call_cannot_hold_and_can_leave_notes_alone():
    from core import ui

    with pytest.raises(TypeError, match="progress=.* cannot be written in a gradio_client call"):
        ui.stamp_result("/x", ("notes",), png_at=(), progress=object())
    image = Image.new("RGB", (2, 2))
    (stamped,) = ui.stamp_result("/x", (image,), notes_at=None, latent=Path("/tmp/gradio/abc/walk.npz"), seed=3)
    assert stamped.info["gradio_client"] == "client.predict(latent=handle_file('latent.npz'), seed=3, api_name='/x')"


def test_reproducible_builds_the_call_from_the_handlers_own_arguments():
    from core.ui.reproduce import reproducible

    @reproducible(notes_at=-1, paths=("latent",))
    def edit(photo, latent=None, alpha=2.0, method="hybrid"):
        return Image.new("RGB", (4, 4)), [(Image.new("RGB", (2, 2)), "step 1")], "Edited."

    image, gallery, notes = edit(Image.new("RGB", (8, 8)), "/tmp/x/face_seed3.safetensors", alpha=-1.5)
    expected = Call("/edit", {"photo": InputFile("photo.png"), "latent": InputFile("latent.safetensors"),
                              "alpha": -1.5, "method": "hybrid"})
    assert read_call(image) == expected and read_call(gallery[0][0]) == expected and gallery[0][1] == "step 1"
    assert notes.startswith("Edited.\n\n**Reproduce**") and notes.endswith(expected.code() + "\n```")
    assert read_call(edit(None)[0]).arguments["photo"] is None  # no upload: no placeholder
