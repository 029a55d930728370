"""Inpainting: paint over an object or a hole and get a plausible fill (LaMa, or OpenCV offline).

Paint the mask on the photo (any brush colour: the painted pixels are the hole) or upload a
separate mask (white = hole; a mask of another size is resized with nearest-neighbour). Only
masked pixels change; everything else is the input, bit for bit. Run: ``python apps/inpaint/app.py``.
API: ``/inpaint`` (image, mask, method, dilation, strategy, working_size, margin) and
``/inpaint_editor`` (editor value, same parameters) -> (result, [before, after], mask used, notes).
"""

import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import gradio as gr

from core import ui
from core.images import resize_max_side

TITLE = "Inpainting"
DESCRIPTION = (
    "Remove an object or fill a hole: paint over it, get a fill that matches the surroundings. "
    "**LaMa** (a GAN with Fourier convolutions) invents plausible texture and structure; **OpenCV Telea / "
    "Navier-Stokes** work offline and are good for thin scratches. Only painted pixels change."
)
MODEL_IDS = ["lama.big_lama"]
ui.preload_on_zero_gpu(MODEL_IDS)  # ZeroGPU only: models go on the GPU at start-up
EXAMPLES = Path(__file__).resolve().parent / "examples"
METHODS = [("Auto: LaMa if downloaded, else Telea", "auto"), ("LaMa big-lama", "lama"),
           ("OpenCV Telea", "telea"), ("OpenCV Navier-Stokes", "ns")]
STRATEGIES = [("Crop around the mask (fast, full sharpness)", "crop"), ("Whole image at full resolution", "full")]
METHOD_LABELS = {value: label for label, value in METHODS}
PREVIEW_SIDE = 1536  # before/after and mask previews; the result image is full resolution


def _run(image, mask, method, dilation, strategy, working_size, margin):
    from core.images import load_image
    from core.pipelines.inpaint import inpaint, overlay_mask

    photo = load_image(image)
    start = time.perf_counter()
    result = inpaint(photo, mask, method=method, dilation=int(dilation), strategy=strategy,
                     working_size=int(working_size), margin=int(margin))
    seconds = time.perf_counter() - start
    notes = []
    if result.notice:
        gr.Warning(result.notice)
        notes.append(f"**Note:** {result.notice}")
    if result.method != "none":
        left, top, right, bottom = result.box
        notes.append(f"Filled {int(result.mask.sum()):,} pixels with **{METHOD_LABELS[result.method]}** in "
                     f"{seconds:.1f} s; region processed: {right - left}x{bottom - top} at ({left}, {top}) of a "
                     f"{photo.width}x{photo.height} photo.")
    preview = (resize_max_side(photo, PREVIEW_SIDE), resize_max_side(result.image, PREVIEW_SIDE))
    used = resize_max_side(overlay_mask(photo, result.mask), PREVIEW_SIDE)
    return result.image, preview, used, "\n\n".join(notes)


@ui.user_errors
@ui.heavy
@ui.gpu(duration=60)
def inpaint_upload(image, mask, method="auto", dilation=0, strategy="crop", working_size=768, margin=128):
    """Inpaint ``image`` where ``mask`` is white (any size; resized with nearest-neighbour)."""
    return _run(image, mask, method, dilation, strategy, working_size, margin)


@ui.user_errors
@ui.heavy
@ui.gpu(duration=60)
def inpaint_editor(editor, method="auto", dilation=0, strategy="crop", working_size=768, margin=128):
    """Inpaint the editor's photo where it was painted (the alpha of its layers)."""
    from core.pipelines.inpaint import mask_from_editor

    image, hole = mask_from_editor(editor)
    return _run(image, hole, method, dilation, strategy, working_size, margin)


def brush(size):
    return gr.ImageEditor(brush=gr.Brush(default_size=int(size), colors=[("#ff2878", 0.7)], color_mode="fixed"))


with gr.Blocks(title=TITLE, delete_cache=ui.DELETE_CACHE) as demo:
    gr.Markdown(f"# {TITLE}\n{DESCRIPTION}")
    with gr.Row():
        with gr.Column():
            with gr.Tab("Paint the mask"):
                editor = gr.ImageEditor(
                    type="numpy", image_mode="RGBA", layers=False, transforms=(), format="png",
                    sources=["upload", "clipboard"], canvas_size=(768, 768), label="Photo: select the brush, paint",
                    brush=gr.Brush(default_size=24, colors=[("#ff2878", 0.7)], color_mode="fixed"),
                    eraser=gr.Eraser(default_size=24))
                brush_size = ui.Slider(2, 200, value=24, step=1, label="Brush size (px)")
                run_editor = gr.Button("Inpaint", variant="primary")
            with gr.Tab("Upload a mask"):
                with gr.Row():
                    photo = ui.ImageInput(label="Photo", sources=["upload", "clipboard"], elem_id="photo")
                    mask = ui.MaskInput(label="Mask (white = hole)", sources=["upload", "clipboard"], elem_id="mask")
                run_upload = gr.Button("Inpaint", variant="primary", elem_id="run_upload")
            method = gr.Radio(METHODS, value="auto", label="Method")
            dilation = ui.Slider(0, 64, value=4, step=1, label="Mask dilation (px)",
                                 info="Grow the hole to cover edges and shadows of the object")
            with gr.Accordion("High resolution", open=False):
                strategy = gr.Radio(STRATEGIES, value="crop", label="Strategy")
                working_size = ui.Slider(256, 2048, value=768, step=64, label="Working size (px)",
                                         info="Crops larger than this are inpainted downscaled, then pasted back")
                margin = ui.Slider(16, 512, value=128, step=16, label="Context margin around the mask (px)")
        with gr.Column():
            result = gr.Image(label="Result (full resolution PNG)", format="png", type="pil",
                              buttons=["download", "fullscreen"], elem_id="result")
            slider = gr.ImageSlider(label="Before / after", type="pil", format="png")
            used = gr.Image(label="Mask used", format="png", type="pil")
            notes = gr.Markdown(label="Notes")
    settings = [method, dilation, strategy, working_size, margin]
    outputs = [result, slider, used, notes]
    run_upload.click(inpaint_upload, [photo, mask, *settings], outputs, api_name="inpaint",
                     concurrency_id="model", concurrency_limit=1)
    run_editor.click(inpaint_editor, [editor, *settings], outputs, api_name="inpaint_editor",
                     concurrency_id="model", concurrency_limit=1)
    brush_size.release(brush, brush_size, editor, api_visibility="private")
    gr.Examples([[str(EXAMPLES / "coffee.jpg"), str(EXAMPLES / "coffee_mask.png")],
                 [str(EXAMPLES / "astronaut.jpg"), str(EXAMPLES / "astronaut_mask.png")]], [photo, mask])
    gr.Markdown("Tips: the editor opens on the image tool; pick the brush to paint. A white-on-black mask of "
                "another size is resized (nearest-neighbour). A blank mask returns the photo unchanged.")
    ui.model_card(MODEL_IDS)

if __name__ == "__main__":
    ui.launch(demo)
