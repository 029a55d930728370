"""Text to image with small Stable Diffusion models (diffusers): SD-Turbo (1 step) and BK-SDM-Tiny.

Previews stream while the model denoises (TAESD when downloaded); Stop ends the run after the
running step. Every PNG carries its settings (A1111 ``parameters`` text): drop one back to reuse
them. Same seed + same settings + same device = same image. Run: ``python apps/text2image/app.py``.
API: ``/generate`` (model, prompt, negative_prompt, steps, guidance, width, height, seed, num_images,
fast_decode) -> (gallery of PNGs, seed used, parameters text); ``/read_parameters`` (png) -> settings.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import gradio as gr

from core import ui
from core.ui import reproduce
from core.pipelines import text_to_image as t2i
from core.pipelines.streaming import Progress
from core.pipelines.text_to_image_loading import (default_fast_decode, import_diffusers, load_pipeline, load_taesd,
                                                  missing_message)
from core.pipelines.text_to_image_params import read_parameters as read_png_parameters
from core.weights import availability, get_entry, models_for_app, weights_present

TITLE = "Text to image (diffusers)"
DESCRIPTION = (
    "Type a prompt, get an image from a small Stable Diffusion model that runs on a CPU. **SD-Turbo** makes a "
    "finished picture in one step (guidance 0); **BK-SDM-Tiny** (open licence) needs about 25 steps with guidance. "
    "Seeds are random unless you set one; the seed used is always shown and stored in each PNG."
)
GENERATORS = t2i.generators()
MODEL_IDS = models_for_app("text2image")  # the generators and the TAESD decoder
PROMPTS = ["a lighthouse on a cliff at sunset, oil painting", "a red fox in the snow, photograph, 50mm",
           "an isometric cozy library with plants, digital art", "portrait of an old sailor, charcoal sketch"]
cancels = ui.Cancels()  # Stop ends the session's run after its running step


# GPU seconds per denoising step of one 512x512 image on a ZeroGPU slice (estimate; guidance doubles it).
GPU_SECONDS_PER_STEP = 0.1
ui.preload_on_zero_gpu(MODEL_IDS, load=lambda m: load_pipeline(m) if m in GENERATORS else load_taesd())
if any(weights_present(m) for m in GENERATORS):  # the first generation then does not wait ~7 s for the imports
    ui.warm_up(import_diffusers)


def gpu_seconds(model, prompt="", negative_prompt="", steps=25, guidance=7.5, width=512, height=512, seed=-1,
                num_images=1, *args, **kwargs) -> float:
    """The ZeroGPU window one request asks for: start-up plus steps x images x pixels (x2 with guidance)."""
    passes = 2 if float(guidance) > 1 else 1
    return 20 + int(steps) * int(num_images) * passes * GPU_SECONDS_PER_STEP * int(width) * int(height) / 512**2


def about(model_id):
    entry = get_entry(model_id)
    return f"**{entry.title}**: {entry.info.get('card', '')}\n\n*Licence:* {entry.license}"


def missing_models():
    return [m for m in GENERATORS if not availability(m)[0]]


def weights_notice(missing):
    return "\n\n".join(f"**Weights missing: {get_entry(m).title}.** Run `python -m core.weights fetch {m}` where "
                       f"the Hub is reachable (details under *How to get the weights*)." for m in missing)


def model_settings(model_id):
    s = t2i.Settings(model_id)
    return s.steps, s.guidance_scale, s.width, s.height, about(model_id)


@ui.user_errors
@ui.heavy
@ui.gpu(duration=gpu_seconds)
def generate(model, prompt, negative_prompt="", steps=25, guidance=7.5, width=512, height=512, seed=-1,
             num_images=1, fast_decode=False, request: gr.Request = None, progress=gr.Progress()):
    """Generate images from a text prompt with a small Stable Diffusion model (streams previews in the UI).

    Args:
        model: the "Model" menu: diffusers.sd_turbo (one step, guidance 0) or diffusers.bk_sdm_tiny (about 25 steps, guidance 7.5).
        prompt: "Prompt": what the picture shows.
        negative_prompt: "Negative prompt": what to avoid (needs guidance > 1).
        steps: "Steps" of denoising (1-50).
        guidance: "Guidance (CFG scale)", 0-20.
        width: "Width" in px, a multiple of 8 (64-1024).
        height: "Height" in px, a multiple of 8 (64-1024).
        seed: "Seed"; -1 picks a random one; image i of a batch uses seed + i.
        num_images: "Images" in the batch.
        fast_decode: "Fast decoder (TAESD)": much faster on a CPU, slightly softer details.

    Returns:
        the images (PNGs with A1111 parameters and the gradio_client call in their metadata), the seed used, and the parameters text ending with the gradio_client call that reproduces them.
    """
    settings = t2i.Settings(model, negative_prompt, steps, guidance, width, height, seed, num_images, fast_decode)
    progress(0, desc="Loading the model (the first run downloads or reads it)")
    watched = ui.sees_previews(request)  # the page gets the previews (JPEG); scripts and agents the notes only
    with cancels.running(request) as cancel:
        for event in ui.offload_stream(t2i.stream, prompt, settings, cancel=cancel):
            if isinstance(event, Progress):
                progress((event.step, event.total), desc="Denoising", unit="steps")
                if event.preview:
                    caption = f"preview, step {event.step}/{event.total}"
                    previews = [(ui.preview_file(im), caption) for im in event.preview] if watched else gr.skip()
                    yield previews, gr.skip(), event.note
    result, d = event, event.details
    notes = "\n".join(f"Note: {n}" for n in result.notes)
    if result.cancelled:
        yield [], d["seed"], notes or "Stopped."
        return
    for note in result.notes:
        gr.Warning(note)
    summary = f"{len(result.images)} image(s) in {result.seconds:.1f} s, seeds {', '.join(map(str, result.seeds))}."
    call = reproduce.Call("/generate", {"model": d["model_id"], "prompt": d["prompt"],
                                        "negative_prompt": d["negative_prompt"], "steps": d["steps"],
                                        "guidance": d["guidance_scale"], "width": d["width"], "height": d["height"],
                                        "seed": d["seed"], "num_images": d["num_images"],
                                        "fast_decode": d["fast_decode"]})
    text = "\n\n".join(s for s in (result.infotexts[0], summary, notes, "Reproduce:\n" + call.script()) if s)
    yield ([(call.stamp(im, parameters=False), f"seed {s}") for im, s in zip(result.images, result.seeds)],
           d["seed"], text)


@ui.user_errors
@ui.light
def read_parameters(png):
    """Read the settings stored in a PNG made here (or an A1111-style PNG) to reuse them.

    Args:
        png: a PNG with A1111 "parameters" text (an http(s) URL or a base64 data URL when called as a tool).

    Returns:
        model, prompt, negative prompt, steps, guidance, width, height, seed.
    """
    if not png:
        raise ValueError("Drop a PNG made by this app to reuse its settings.")
    p = read_png_parameters(png)
    keep = gr.update()
    model = p.get("model_id") if p.get("model_id") in GENERATORS else keep
    clamp = lambda key, low, high: min(max(p[key], low), high) if key in p else keep  # noqa: E731
    return (model, p["prompt"], p["negative_prompt"], clamp("steps", 1, 50), clamp("guidance_scale", 0, 20),
            clamp("width", 64, 1024), clamp("height", 64, 1024), p.get("seed", keep))


steps0, guidance0, width0, height0, about0 = model_settings(GENERATORS[0])
with gr.Blocks(title=TITLE, delete_cache=ui.DELETE_CACHE) as demo:
    gr.Markdown(f"# {TITLE}\n{DESCRIPTION}")
    missing = missing_models()
    gr.Markdown(weights_notice(missing))
    with gr.Accordion("How to get the weights", open=False, visible=bool(missing)):
        gr.Markdown("\n\n".join(missing_message(m) for m in missing))
    with gr.Row():
        with gr.Column():
            model = gr.Dropdown([(get_entry(m).title, m) for m in GENERATORS], value=GENERATORS[0], label="Model")
            model_about = gr.Markdown(about0)
            prompt = gr.Textbox(label="Prompt", lines=2, placeholder=PROMPTS[0])
            with gr.Row():
                run = gr.Button("Generate", variant="primary")
                stop_button = gr.Button("Stop", variant="stop")
            with gr.Accordion("Settings", open=False):
                negative = gr.Textbox(label="Negative prompt (needs guidance > 1)", lines=1)
                steps = ui.Slider(1, 50, value=steps0, step=1, label="Steps")
                guidance = ui.Slider(0, 20, value=guidance0, step=0.5, label="Guidance (CFG scale)")
                with gr.Row():
                    width = ui.Slider(64, 1024, value=width0, step=8, label="Width")
                    height = ui.Slider(64, 1024, value=height0, step=8, label="Height")
                with gr.Row():
                    seed = ui.seed_field()
                    num_images = ui.Slider(1, t2i.MAX_IMAGES, value=1, step=1, label="Images")
                fast_decode = gr.Checkbox(default_fast_decode(), label="Fast decoder (TAESD): much faster on a "
                                          "CPU, slightly softer details")
            reuse = gr.File(label="Reuse settings: drop a PNG made here", file_types=[".png"], type="filepath",
                            height=120)
        with gr.Column():
            gallery = gr.Gallery(label="Images", format="png", type="pil", columns=2, height="auto")
            with gr.Row():
                seed_used = ui.Number(None, label="Seed used", precision=0, interactive=False)
                reuse_seed = gr.Button("Use this seed")
            parameters = gr.Textbox(label="Parameters (also stored in each PNG)", lines=4, buttons=["copy"])
    gr.Examples([[p] for p in PROMPTS], [prompt])
    inputs = [model, prompt, negative, steps, guidance, width, height, seed, num_images, fast_decode]
    event = gr.on([run.click, prompt.submit], generate, inputs, [gallery, seed_used, parameters], api_name="generate",
                  **ui.HEAVY_EVENTS)
    stop_button.click(cancels.cancel, None, None, cancels=[event], api_visibility="private")
    model.input(model_settings, model, [steps, guidance, width, height, model_about], api_visibility="private")
    reuse_seed.click(lambda s: s, seed_used, seed, api_visibility="private")
    reuse.upload(read_parameters, reuse, [model, prompt, negative, steps, guidance, width, height, seed],
                 api_name="read_parameters", **ui.JOB_EVENTS)
    ui.model_card(MODEL_IDS)

if __name__ == "__main__":
    ui.launch(demo)
