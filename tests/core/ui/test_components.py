"""Inputs that refuse bad images before gradio decodes them: ``core.ui.components``."""

import gradio as gr
import pytest

from core import ui


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
