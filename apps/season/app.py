"""Season swap with CycleGAN (Zhu et al., ICCV 2017): summer <-> winter, and a vintage look, at full resolution.

Upload a photo, pick a direction and a resolution mode. "Full resolution" runs the generator at
the photo's own resolution over overlapping tiles of the model's training size, blended without
seams, so the result has exactly the input's size and aspect ratio (the official demo squashes
everything to 256x256). "Fast" resizes the shorter side to the training size, translates once and
resizes back. Run: ``python apps/season/app.py``.
API: ``/translate`` (image, model, mode) -> ([before, after], result PNG, notes);
``/read_season_parameters`` (a result PNG) -> (model, mode).
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import gradio as gr

from core import ui
from core.ui import reproduce
from core.weights import get_entry, models_for_app

TITLE = "Season swap (CycleGAN)"
DESCRIPTION = (
    "Turn a summer landscape into winter and back with the official CycleGAN Yosemite generators, or give "
    "any photo a **vintage film look** with a CycleGAN that works offline. Full resolution: the output has "
    "the size and aspect ratio of your photo."
)
MODEL_IDS = models_for_app("season")
DIRECTIONS = [(get_entry(model_id).choice_label, model_id) for model_id in MODEL_IDS]
ui.preload_on_zero_gpu(MODEL_IDS)  # ZeroGPU only: models go on the GPU at start-up
MODES = [("Full resolution (overlapping tiles)", "tiled"),
         ("Fast: resize to the model's size and back (faster only for photos larger than that)", "resize")]
EXAMPLES = Path(__file__).resolve().parent / "examples"
# Seconds on a 2-core CPU (bench/image_to_image.py): per megapixel in full resolution, per photo in
# the fast mode; refined by the durations measured on this server (core.limits.JOB_CLOCK).
SECONDS_PER_UNIT = {"tiled": 60.0, "resize": 2.0}


@ui.user_errors
@ui.heavy
@ui.gpu(duration=90)
def translate(image, model_id: str = MODEL_IDS[0], mode: str = "tiled", progress=gr.Progress()):
    """Translate a photo with a CycleGAN generator: summer to winter, winter to summer, or a vintage film look.

    Args:
        image: the photo (any size; an http(s) URL or a base64 data URL when called as a tool).
        model_id: the "Direction / model" menu: cyclegan.vintage (modern -> vintage look, offline), cyclegan.summer2winter or cyclegan.winter2summer (Yosemite).
        mode: the "Resolution" choice: tiled (full resolution, overlapping tiles, same size as the photo) or resize (fast: the model's size and back).

    Returns:
        the before/after pair (JPEG previews at display size), the result (full-resolution PNG with the settings in its metadata), and notes ending with the gradio_client call that reproduces it.
    """
    from core.images import load_image
    from core.limits import JOB_CLOCK, Budget, expected_time_text
    from core.pipelines import translate as pipeline

    if image is None:
        raise ValueError("Upload a photo first.")
    settings = pipeline.Settings(model_id, mode)
    photo = load_image(image)
    units = photo.width * photo.height / 1e6 if mode == "tiled" else 1
    kind = f"translate:{model_id}:{mode}"
    progress(0, desc=f"Translating: expected time "
                     f"{expected_time_text(JOB_CLOCK.estimate(kind, units, SECONDS_PER_UNIT[mode]))}")
    result = ui.offload(pipeline.run, photo, settings, budget=Budget(),
                        progress=lambda done, total: progress((done, total), desc="Translating", unit="tiles"))
    seconds = result.details["seconds"]
    JOB_CLOCK.record(kind, units, seconds)
    call = reproduce.Call("/translate", {**reproduce.files("image"), "model_id": model_id, "mode": mode})
    notes = f"{photo.width}x{photo.height} px, mode **{mode}**, model `{model_id}`: {seconds:.1f} s."
    for note in result.details["notes"]:
        gr.Warning(note)
        notes += f"\n\n**Note:** {note}"
    return (ui.preview(photo), ui.preview(result.image)), call.stamp(result.image), f"{notes}\n\n{call.markdown()}"


with gr.Blocks(title=TITLE, delete_cache=ui.DELETE_CACHE) as demo:
    gr.Markdown(f"# {TITLE}\n{DESCRIPTION}")
    with gr.Row():
        with gr.Column():
            photo = ui.ImageInput(label="Photo", sources=["upload", "clipboard", "webcam"])
            model = gr.Dropdown(DIRECTIONS, value=MODEL_IDS[0], label="Direction / model")
            status = gr.Markdown(ui.weights_status(MODEL_IDS[0]))
            mode = gr.Radio(MODES, value="tiled", label="Resolution")
            run = gr.Button("Translate", variant="primary")
            ui.reuse_settings("read_season_parameters", ("translate",), {"model_id": model, "mode": mode})
        with gr.Column():
            slider = gr.ImageSlider(label="Before / after", type="pil", format=ui.PREVIEW_FORMAT)
            result = gr.Image(label="Result (full resolution PNG)", type="pil", format="png",
                              buttons=["download", "fullscreen"])
            notes = gr.Markdown()
    run.click(translate, [photo, model, mode], [slider, result, notes], api_name="translate",
              **ui.HEAVY_EVENTS)
    model.change(ui.weights_status, model, status, api_visibility="private")
    gr.Examples([[str(EXAMPLES / "rocket.jpg"), "cyclegan.vintage", "tiled"],
                 [str(EXAMPLES / "chelsea.jpg"), "cyclegan.vintage", "tiled"],
                 [str(EXAMPLES / "coffee.jpg"), "cyclegan.vintage", "resize"],
                 [str(EXAMPLES / "rocket.jpg"), "cyclegan.summer2winter", "tiled"]], [photo, model, mode])
    gr.Markdown(
        "The Yosemite models were trained on 256x256 Flickr photos, the vintage model on 512x512 crops: full "
        "resolution tiles the photo at that size (CPU time grows with the area; very large photos are refused "
        "with a message, use the fast mode for them). The vintage model desaturates and greys the colours, "
        "most on cool or blue scenes.")
    ui.model_card(MODEL_IDS)

if __name__ == "__main__":
    ui.launch(demo)
