"""Inpainting: remove an object or fill a hole (MI-GAN, LaMa, or OpenCV offline); extend the canvas.

The hole comes from the brush, an uploaded mask (white = hole) or a selection by clicking
(GrabCut offline, Segment Anything when downloaded); they combine as a union, then dilation.
Only masked pixels change. Run: ``python apps/inpaint/app.py``. API (settings = method,
dilation, strategy, working_size, margin): ``/inpaint`` (image, mask, settings),
``/inpaint_editor`` (editor value, settings), ``/remove_object`` (image, prompts, selector, mask,
settings) -> (result, [before, after], mask PNG, notes); ``/select_mask`` (image, prompts,
selector, dilation) -> (preview, mask PNG, notes); ``/compare_methods`` (image, mask, methods,
dilation, strategy, working_size, margin) -> (gallery, [first, second], mask PNG, notes);
``/extend_canvas`` (image, left, top, right, bottom, method) -> (result, mask PNG, notes).
"""

import importlib
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import gradio as gr

from core import ui
from core.pipelines import inpaint_api as api
from core.pipelines import inpaint_models
from core.weights import models_for_app

TITLE = "Inpainting"
DESCRIPTION = (
    "Remove an object or fill a hole: paint over it, upload a mask, or click on it; get a fill that matches the "
    "surroundings. **MI-GAN** (fast) and **LaMa** invent texture and structure; **OpenCV Telea / Navier-Stokes** "
    "work offline and are good for thin scratches. Only masked pixels change."
)
MODEL_IDS = models_for_app("inpaint")
ui.preload_on_zero_gpu(inpaint_models.fill_model_ids())  # ZeroGPU only: models go on the GPU at start-up
ui.preload_on_zero_gpu(inpaint_models.selector_ids(), load=lambda model_id: api.load_selector(model_id, "cuda"))
ui.warm_up(importlib.import_module, "core.pipelines.inpaint_fill", lane="light")  # OpenCV, at start-up
EXAMPLES = Path(__file__).resolve().parent / "examples"
METHODS = [("Auto: MI-GAN, else LaMa if downloaded, else Telea", "auto"), ("MI-GAN 512 (fast)", "migan"),
           ("LaMa big-lama", "lama"), ("OpenCV Telea", "telea"), ("OpenCV Navier-Stokes", "ns")]
SELECTORS = [("Auto: Segment Anything if downloaded, else GrabCut", "auto"), ("OpenCV GrabCut (offline)", "grabcut"),
             ("Segment Anything ViT-B", "sam")]
STRATEGIES = [("Crop around the mask (fast, full sharpness)", "crop"), ("Whole image at full resolution", "full")]
MADE_HERE = ("inpaint", "inpaint_editor", "remove_object", "compare_methods", "extend_canvas", "select_mask")


@ui.user_errors
@ui.in_lane(lambda image, mask, method="auto", *rest, **kwargs: api.job_cost(method))
@ui.gpu(duration=60)
def inpaint(image, mask, method="auto", dilation=0, strategy="crop", working_size=768, margin=128,
            progress=gr.Progress()):
    settings = dict(method=method, dilation=dilation, strategy=strategy, working_size=working_size, margin=margin)
    outputs = ui.offload(api.inpaint_outputs, image, mask, notify=gr.Warning, **settings)
    return ui.stamp_result("/inpaint", outputs, png_at=(0, 2), image=image, mask=mask, **settings)


inpaint.__doc__ = api.INPAINT_DOC  # the MCP tool's description, argument by argument


@ui.user_errors
@ui.in_lane(lambda editor, method="auto", *rest, **kwargs: api.job_cost(method))
@ui.gpu(duration=60)
def inpaint_editor(editor, method="auto", dilation=0, strategy="crop", working_size=768, margin=128,
                   progress=gr.Progress()):
    """Inpaint the editor's photo where it was painted (the alpha of its layers)."""
    settings = dict(method=method, dilation=dilation, strategy=strategy, working_size=working_size, margin=margin)
    outputs = ui.offload(api.editor_outputs, editor, notify=gr.Warning, **settings)
    return ui.stamp_result("/inpaint_editor", outputs, png_at=(0, 2), editor=editor, **settings)


@ui.user_errors
@ui.heavy
@ui.gpu(duration=60)
def select_mask(image, prompts, selector="auto", dilation=0):
    """The object under ``prompts`` (``+x,y``, ``-x,y``, ``box l,t,r,b`` or JSON) as a mask PNG of the photo's size."""
    outputs = ui.offload(api.select_outputs, image, prompts, selector, dilation)
    return ui.stamp_result("/select_mask", outputs, png_at=(0, 1), image=image, prompts=prompts, selector=selector,
                           dilation=dilation)


@ui.user_errors
@ui.heavy
@ui.gpu(duration=60)
def remove_object(image, prompts, selector="auto", mask=None, method="auto", dilation=4, strategy="crop",
                  working_size=768, margin=128):
    """Select the object under ``prompts`` (union with ``mask`` if given), dilate, inpaint: one call."""
    settings = dict(method=method, dilation=dilation, strategy=strategy, working_size=working_size, margin=margin)
    outputs = ui.offload(api.remove_outputs, image, prompts, selector, mask, gr.Warning, **settings)
    return ui.stamp_result("/remove_object", outputs, png_at=(0, 2), image=image, prompts=prompts, selector=selector,
                           mask=mask, **settings)


@ui.user_errors
@ui.heavy
@ui.gpu(duration=120)
def compare_methods(image, mask, methods=("telea", "migan"), dilation=0, strategy="crop", working_size=768,
                    margin=128):
    """The same mask filled by each method: a gallery, and a slider between the first two."""
    settings = dict(dilation=dilation, strategy=strategy, working_size=working_size, margin=margin)
    outputs = ui.offload(api.compare_outputs, image, mask, methods, **settings)
    return ui.stamp_result("/compare_methods", outputs, png_at=(0, 2), image=image, mask=mask,
                           methods=list(methods or []), **settings)


@ui.user_errors
@ui.heavy
@ui.gpu(duration=60)
def extend_canvas(image, left=0, top=0, right=0, bottom=0, method="auto"):
    """Grow the photo by the given pixels on each side; the new area is filled by ``method``."""
    outputs = ui.offload(api.extend_outputs, image, left, top, right, bottom, method)
    return ui.stamp_result("/extend_canvas", outputs, png_at=(0, 1), image=image, left=left, top=top, right=right,
                           bottom=bottom, method=method)


def brush(size):
    return gr.ImageEditor(brush=gr.Brush(default_size=int(size), colors=[("#ff2878", 0.7)], color_mode="fixed"))


def on_click(prompts, mode, event: gr.SelectData):
    from core.pipelines.select_prompts import add_click

    return add_click(prompts, *event.index, mode)


with gr.Blocks(title=TITLE, delete_cache=ui.DELETE_CACHE) as demo:
    gr.Markdown(f"# {TITLE}\n{DESCRIPTION}")
    with gr.Row():
        with gr.Column():
            with gr.Tab("Paint the mask"):
                editor = ui.ImageEditor(
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
                with gr.Row():
                    run_upload = gr.Button("Inpaint", variant="primary", elem_id="run_upload")
                    edit_upload = gr.Button("Edit this mask with the brush")
                compare = gr.CheckboxGroup([m for m in METHODS if m[1] != "auto"], value=["telea", "migan"],
                                           label="Methods to compare")
                run_compare = gr.Button("Compare methods on this mask")
            with gr.Tab("Select by clicking"):
                clicks = ui.ImageInput(label="Photo: click on the object", sources=["upload", "clipboard"])
                click_mode = gr.Radio(["include", "exclude", "box"], value="include", label="A click adds",
                                      info="box: click two opposite corners")
                prompts = gr.Textbox(label="Prompts", placeholder="+120,80; -200,150; box 10,20,300,400",
                                     info="+x,y include, -x,y exclude, box left,top,right,bottom (pixels) or JSON")
                selector = gr.Radio(SELECTORS, value="auto", label="Selector")
                extra_mask = ui.MaskInput(label="Optional mask to add (white = hole)", sources=["upload", "clipboard"])
                with gr.Row():
                    run_select = gr.Button("Preview the selection")
                    add_select = gr.Button("Add it to the brush mask")
                    run_remove = gr.Button("Remove it", variant="primary")
                selection = gr.Image(label="Selection (dilated)", type="pil", format="png")
            with gr.Tab("Extend the canvas"):
                canvas_photo = ui.ImageInput(label="Photo", sources=["upload", "clipboard"])
                sides = [ui.Slider(0, 1024, value=v, step=8, label=f"{s} (px)")
                         for s, v in (("Left", 0), ("Top", 0), ("Right", 128), ("Bottom", 0))]
                gr.Markdown("Telea / Navier-Stokes only smear the border colours outwards: fine for a few pixels, "
                            "streaks beyond that. MI-GAN and LaMa invent texture but were trained on holes inside "
                            "photos, so wide bands repeat and blur what is near the border.")
                run_extend = gr.Button("Extend", variant="primary")
            method = gr.Radio(METHODS, value="auto", label="Method")
            dilation = ui.Slider(0, 64, value=4, step=1, label="Mask dilation (px)",
                                 info="Grow the hole to cover edges and shadows of the object")
            with gr.Accordion("High resolution", open=False):
                strategy = gr.Radio(STRATEGIES, value="crop", label="Strategy")
                working_size = ui.Slider(256, 2048, value=768, step=64, label="Working size (px)",
                                         info="Crops larger than this are inpainted downscaled, then pasted back")
                margin = ui.Slider(16, 512, value=128, step=16, label="Context margin around the mask (px)")
            ui.reuse_settings("read_inpaint_parameters", MADE_HERE, {"method": method, "dilation": dilation,
                              "strategy": strategy, "working_size": working_size, "margin": margin})
        with gr.Column():
            result = gr.Image(label="Result (full resolution PNG)", format="png", type="pil",
                              buttons=["download", "fullscreen"], elem_id="result")
            slider = gr.ImageSlider(label="Before / after (compare: first / second method)", type="pil",
                                    format=ui.PREVIEW_FORMAT)
            used = gr.Image(label="Mask used (PNG of the photo's size, white = hole)", format="png", type="pil",
                            image_mode="L", buttons=["download"], interactive=False, elem_id="mask_used")
            gallery = gr.Gallery(label="Methods compared", format="png", columns=2)
            notes = gr.Markdown(label="Notes")
    settings = [method, dilation, strategy, working_size, margin]
    outputs = [result, slider, used, notes]
    heavy = ui.JOB_EVENTS  # each handler's lane decides (select, remove, compare, extend: the heavy lane)
    run_upload.click(inpaint, [photo, mask, *settings], outputs, api_name="inpaint", **heavy)
    run_editor.click(inpaint_editor, [editor, *settings], outputs, api_name="inpaint_editor", **heavy)
    run_select.click(select_mask, [clicks, prompts, selector, dilation], [selection, used, notes],
                     api_name="select_mask", **heavy)
    run_remove.click(remove_object, [clicks, prompts, selector, extra_mask, *settings], outputs,
                     api_name="remove_object", **heavy)
    run_compare.click(compare_methods, [photo, mask, compare, dilation, strategy, working_size, margin],
                      [gallery, slider, used, notes], api_name="compare_methods", **heavy)
    run_extend.click(extend_canvas, [canvas_photo, *sides, method], [result, used, notes], api_name="extend_canvas",
                     **heavy)
    brush_size.release(brush, brush_size, editor, api_visibility="private")
    clicks.select(on_click, [prompts, click_mode], prompts, api_visibility="private")
    edit_upload.click(ui.user_errors(api.editor_with_mask), [photo, mask], editor, api_visibility="private")
    add_select.click(select_mask, [clicks, prompts, selector, dilation], [selection, used, notes],
                     api_name="add_selection", api_visibility="private").success(ui.user_errors(api.editor_with_mask),
                                                       [clicks, used, editor], editor, api_visibility="private")
    gr.Examples([[str(EXAMPLES / "coffee.jpg"), str(EXAMPLES / "coffee_mask.png")],
                 [str(EXAMPLES / "astronaut.jpg"), str(EXAMPLES / "astronaut_mask.png")]], [photo, mask])
    gr.Markdown("Tips: the editor opens on the image tool; pick the brush to paint. *Edit this mask with the brush* "
                "and *Add it to the brush mask* put a mask into the editor (union with what is painted there); the "
                "eraser removes from it. A blank mask returns the photo unchanged.")
    ui.model_card(MODEL_IDS)

if __name__ == "__main__":
    ui.launch(demo)
