"""Sketch to photo with pix2pix (Isola et al., CVPR 2017): draw black strokes on white, get a photo.

Draw on the pad (select the brush first; a faint guide shows where the faces model expects the
face) or upload a sketch; no stylus? Turn any photo into a training-style sketch with "Photo ->
sketch" (by default the face is first detected and framed like the faces model's training
crops). Paper mode (default) runs the generator as the paper and the official test script do: BatchNorm on the sketch's own statistics and dropout on as noise,
so each seed gives a different variation; eval mode is deterministic. Run:
``python apps/sketch2photo/app.py``. API: ``/sketch_to_photo`` (sketch image, model, paper_mode,
variations, seed) -> (gallery, notes); ``/sketch_to_photo_pad`` (the pad's value, same options);
``/photo_to_sketch`` (photo, detail, frame_face) -> sketch;
``/read_sketch_parameters`` (a result PNG) -> its settings.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import gradio as gr

from core import ui
from core.ui import reproduce
from core.pipelines import sketch as sketch_pipeline
from core.pipelines import sketch_to_photo as photo_pipeline
from core.pipelines.sketch import pad_guide
from core.pipelines.sketch_to_photo import DIFFERENCE_GAIN
from core.weights import get_entry, models_for_app, weights_present

TITLE = "Sketch to photo (pix2pix)"
DESCRIPTION = (
    "Draw black strokes on white and a pix2pix generator turns them into a photo. The **edges -> faces** "
    "model was trained by this project on this CPU (64 px, works offline); the official edges -> shoes "
    "models and the other pix2pix tasks are downloaded on first use."
)
MODEL_IDS = models_for_app("sketch2photo")
MODELS = [(get_entry(model_id).choice_label, model_id) for model_id in MODEL_IDS]
ui.preload_on_zero_gpu(MODEL_IDS)  # ZeroGPU only: models go on the GPU at start-up
EXAMPLES = Path(__file__).resolve().parent / "examples"
DEFAULT_MODEL = MODEL_IDS[0]


def job_cost(model_id) -> tuple[str, float]:
    """The 64 px generator takes a few milliseconds (the light lane); the 256 px ones are heavy."""
    from core.pipelines.translate import native_size

    small = model_id in MODEL_IDS and native_size(model_id) <= 64
    return f"sketch:{model_id}", 0.1 if small else 3.0


# When the server starts, the quick jobs' models are loaded (and their first run paid) where they run.
ui.warm_up(sketch_pipeline.run, str(EXAMPLES / "astronaut.jpg"), sketch_pipeline.Settings(), lane="light")
for _model_id in [m for m in MODEL_IDS if job_cost(m)[1] < 1 and weights_present(m)]:
    ui.warm_up(photo_pipeline.run, str(EXAMPLES / "face_sketch_1.png"), photo_pipeline.Settings(_model_id),
               lane="light")


def _run(call, sketch, model_id, paper_mode, variations, seed):
    from core.pipelines import sketch_to_photo as pipeline

    settings = pipeline.Settings(model_id, paper_mode, variations, seed)
    result = ui.offload(pipeline.run, sketch, settings)  # the 256 px models: the model worker on a CPU
    details = result.details
    notes = (f"`{model_id}`, {details['mode']} mode, {len(result.images)} image(s) of {details['size']} px, seed "
             f"{settings.seed}: {details['seconds']:.1f} s.")
    if settings.paper_mode and len(result.images) < settings.variations:
        notes += " This generator has no dropout: it gives one deterministic result."
    if "mean_difference" in details:
        notes += (f" The variations differ by {details['mean_difference']:.1f} of 255 levels per pixel on "
                  "average (dropout is the only noise); the map below shows where.")
    call = reproduce.Call(call.api_name, {**call.arguments, "model_id": model_id, "paper_mode": settings.paper_mode,
                                          "variations": settings.variations, "seed": settings.seed})
    return [(call.stamp(image), f"seed {settings.seed + i}") for i, image in enumerate(result.images)], \
        f"{notes}\n\n{call.markdown()}"


SETTINGS_DOC = """
        model_id: the "Model" menu: pix2pix.edges2faces64 (faces, offline), pix2pix.edges2shoes, pix2pix.edges2shoes_resnet, pix2pix.facades_label2photo, pix2pix.map2sat, pix2pix.sat2map or pix2pix.day2night.
        paper_mode: "Paper mode": true runs the generator as the paper does (BatchNorm on the sketch's statistics, dropout as noise: one variation per seed); false = deterministic eval mode.
        variations: "Variations (paper mode)": how many photos, 1-8; photo i uses seed + i.
        seed: "Seed" of the first variation.

    Returns:
        the photos (gallery of PNGs with the settings in their metadata) and notes ending with the gradio_client call that reproduces them.
    """


@ui.user_errors
@ui.in_lane(lambda sketch, model_id=DEFAULT_MODEL, *rest, **kwargs: job_cost(model_id))
@ui.gpu(duration=30)
def sketch_to_photo(sketch, model_id=DEFAULT_MODEL, paper_mode=True, variations=4, seed=0,
                    progress=gr.Progress()):
    """pix2pix: turn a sketch (black strokes on white; or a label map, map tile or photo for the other tasks) into photos.

    Args:
        sketch: the "Sketch (black strokes on white)" image (an http(s) URL or a base64 data URL when called as a tool).
    """
    if sketch is None:
        raise ValueError("Upload a sketch first, or draw one on the pad.")
    call = reproduce.Call("/sketch_to_photo", reproduce.files("sketch"))
    return _run(call, sketch, model_id, paper_mode, variations, seed)


@ui.user_errors
@ui.in_lane(lambda pad, model_id=DEFAULT_MODEL, *rest, **kwargs: job_cost(model_id))
@ui.gpu(duration=30)
def sketch_to_photo_pad(pad, model_id=DEFAULT_MODEL, paper_mode=True, variations=4, seed=0,
                        progress=gr.Progress()):
    """The same as /sketch_to_photo for the sketch pad's value; agents should prefer /sketch_to_photo.

    Args:
        pad: the "Sketch pad" value: {"background": null, "layers": [], "composite": URL of the drawing}.
    """
    from core.pipelines.sketch import sketch_from_editor

    call = reproduce.Call("/sketch_to_photo_pad", {"pad": {"background": None, "layers": [],
                                                           "composite": reproduce.InputFile("drawing.png")}})
    return _run(call, sketch_from_editor(pad), model_id, paper_mode, variations, seed)


sketch_to_photo.__doc__ = sketch_to_photo.__doc__.rstrip() + SETTINGS_DOC
sketch_to_photo_pad.__doc__ = sketch_to_photo_pad.__doc__.rstrip() + SETTINGS_DOC


@ui.user_errors
@ui.light  # OpenCV Canny (and the face detector to frame a face): no GAN, a fraction of a second
def photo_to_sketch(photo, detail=0.4, frame_face=True):
    """Thin black edges on white, like the edges pix2pix was trained on (OpenCV Canny, cleaned).

    ``frame_face``: detect the photo's one face and frame it like the faces model's training crops
    (a 256 px sketch); otherwise the whole photo is sketched (512 px at most)."""
    return ui.offload(sketch_pipeline.run, photo, sketch_pipeline.Settings(detail, frame_face)).sketch


def difference_map(gallery):
    """The spread of the variations shown in the gallery (None for a single image)."""
    from core.images import load_image
    from core.pipelines.sketch_to_photo import variation_difference

    images = [load_image(item[0]) for item in gallery or []]
    return variation_difference(images)[1].resize((256, 256), 0) if len(images) > 1 else None


with gr.Blocks(title=TITLE, delete_cache=ui.DELETE_CACHE) as demo:
    gr.Markdown(f"# {TITLE}\n{DESCRIPTION}")
    with gr.Row():
        with gr.Column():
            with gr.Tab("Draw"):
                pad = ui.Sketchpad(value=pad_guide(), type="numpy", image_mode="RGBA", canvas_size=(256, 256),
                                   layers=False,
                                   transforms=(), label="Sketch pad: select the brush, draw black strokes",
                                   brush=gr.Brush(default_size=3, colors=["#000000"], color_mode="fixed"),
                                   eraser=gr.Eraser(default_size=12))
                run_pad = gr.Button("Make a photo from the drawing", variant="primary")
            with gr.Tab("Upload a sketch"):
                sketch = ui.ImageInput(label="Sketch (black strokes on white)",
                                       format="png", sources=["upload", "clipboard"])
                run_upload = gr.Button("Make a photo from this sketch", variant="primary")
                gr.Examples([[str(p)] for p in sorted(EXAMPLES.glob("face_sketch_*.png"))], [sketch],
                            label="Example sketches")
                with gr.Accordion("No sketch? Make one from a photo", open=False):
                    photo = ui.ImageInput(label="Photo", sources=["upload", "clipboard", "webcam"])
                    detail = ui.Slider(0, 1, value=0.4, step=0.05, label="Detail (more edges)")
                    frame_face = gr.Checkbox(value=True, label="Frame the face like the faces model's training "
                                                               "crops (detect, align, crop)")
                    to_sketch = gr.Button("Photo -> sketch")
                    gr.Examples([[str(EXAMPLES / "astronaut.jpg")]], [photo], label="Example photo")
            model = gr.Dropdown(MODELS, value=DEFAULT_MODEL, label="Model")
            status = gr.Markdown(ui.weights_status(DEFAULT_MODEL))
            paper_mode = gr.Checkbox(value=True, label="Paper mode (BatchNorm on the sketch's statistics, "
                                                       "dropout as noise, as in the paper); off = eval mode")
            with gr.Row():
                variations = ui.Slider(1, 8, value=4, step=1, label="Variations (paper mode)")
                seed = ui.seed_field("Seed", 0, random_allowed=False)
            ui.reuse_settings("read_sketch_parameters", ("sketch_to_photo", "sketch_to_photo_pad"),
                              {"model_id": model, "paper_mode": paper_mode, "variations": variations, "seed": seed})
        with gr.Column():
            gallery = gr.Gallery(label="Photos", format="png", columns=2, height=520, object_fit="contain")
            notes = gr.Markdown()
            spread = gr.Image(label=f"Where the variations differ (range x{DIFFERENCE_GAIN}, white = most)",
                              format="png", type="pil", height=200, interactive=False)
    settings = [model, paper_mode, variations, seed]
    run_upload.click(sketch_to_photo, [sketch, *settings], [gallery, notes], api_name="sketch_to_photo",
                     **ui.JOB_EVENTS).then(
        difference_map, gallery, spread, api_visibility="private")
    run_pad.click(sketch_to_photo_pad, [pad, *settings], [gallery, notes], api_name="sketch_to_photo_pad",
                  **ui.JOB_EVENTS).then(
        difference_map, gallery, spread, api_visibility="private")
    to_sketch.click(photo_to_sketch, [photo, detail, frame_face], sketch, api_name="photo_to_sketch",
                    **ui.JOB_EVENTS)
    model.change(ui.weights_status, model, status, api_visibility="private")
    gr.Markdown("The faces model answers best to face-like sketches framed like its training faces (the pad's "
                "faint guide: face outline, eyes, nose, mouth; add the hair around it), drawn with the thin brush; "
                "the shoe models expect a shoe in side view.")
    ui.model_card(MODEL_IDS)

if __name__ == "__main__":
    ui.launch(demo)
