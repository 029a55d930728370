"""PULSE face upsampling: search a face generator's latent space for faces that downscale to your input.

Send a tiny square face (8-64 px), or a photo: its face is then found, aligned and downscaled
first ("downscale, then recover"). Every restart is one candidate face; all of them match the
input pixels and none of them is the real person. Run: ``python apps/pulse/app.py``.
API: ``/upsample`` (image, generator, size, steps, eps, samples, seed, face, stylegan2_search) ->
(current/best HR face, HR faces, input vs downscaled faces, summary, details JSON, seed used);
``/read_pulse_parameters`` (a result PNG) -> the settings it was made with.
"""

import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import gradio as gr
from PIL import Image

from core import images, ui
from core.ui import reproduce
from core.pipelines import pulse
from core.pipelines.pulse_adapters import load_generator
from core.pipelines.streaming import Progress
from core.weights import availability, get_entry

TITLE = "PULSE face upsampling"
DESCRIPTION = (
    "PULSE (Menon et al., CVPR 2020) does not sharpen pixels: it searches a face generator for high-resolution "
    "faces that, once downscaled, give back your low-resolution input. Many faces do, so each restart gives "
    "another one; **they are invented faces, not the person in the picture**, and the search can fail (then the "
    "closest face is shown with its error). The generators carry their training data's biases."
)
GENERATORS = pulse.generators()
MODEL_IDS = GENERATORS
LABELS = {"dcgan": "DCGAN 64 px faces (offline)", "stylegan2": "StyleGAN2 FFHQ 1024 px"}  # by architecture
EXAMPLES = Path(__file__).parent / "examples"
# The page's previews of the leading face: two a second (the first at once) show the face forming while the
# progress bar counts every step; each one costs the search CPU time (bench/RESULTS.md, "PULSE previews").
PREVIEW_INTERVAL, PREVIEW_SIDE = 0.5, 512  # seconds; px (the box is 280 px tall)
# Scripts and agents see no previews: the progress and the notes once a second. Each update wakes this
# server and the client while the search runs (100 x 4: round trip 1.17x -> 0.98x, bench/RESULTS.md).
SCRIPT_UPDATE_INTERVAL = 1.0  # seconds
EXAMPLE_FILES = [("dcgan_face_16.png", 16), ("dcgan_face_8.png", 8), ("astronaut_photo.jpg", 16)]
SEARCH_LABELS = [("256 px, then 1024 px for the last 10% of the steps", "256+1024"),
                 ("256 px only, render 1024 px once (fastest)", "256"), ("1024 px all the way (slowest)", "1024")]
cancels = ui.Cancels()  # "Finish now" and "Stop" end the session's search with the best faces so far


# GPU seconds per search step and sample on a ZeroGPU slice by architecture (estimates; bench/gpu_check.py).
GPU_SECONDS_PER_STEP = {"dcgan": 0.005, "stylegan2": 0.08}
ui.preload_on_zero_gpu(MODEL_IDS, load=load_generator)
for _model_id in [m for m in GENERATORS if get_entry(m).arch == "dcgan" and availability(m)[0]]:
    for _lane in ("light", "heavy"):  # short searches are quick jobs, the default one is heavy: a 2-step search
        ui.warm_up(pulse.upsample, str(EXAMPLES / "dcgan_face_16.png"),
                   pulse.Settings(_model_id, steps=2, samples=1, seed=0), lane=_lane)


def gpu_seconds(image, generator=GENERATORS[0], size=16, steps=100, eps=None, samples=4, *args, **kwargs) -> float:
    """The ZeroGPU window one search asks for: start-up plus steps x samples."""
    arch = get_entry(generator).arch if generator in GENERATORS else "stylegan2"
    return 15 + int(steps) * int(samples) * GPU_SECONDS_PER_STEP[arch]


def expected_time(generator, steps, samples, search="256+1024") -> str:
    """The line under the button: how long this search should take here."""
    from core.limits import expected_time_text

    try:
        return f"Expected time: {expected_time_text(pulse.expected_seconds(generator, steps, samples, search))}."
    except (TypeError, ValueError):
        return ""


def job_cost(image, generator=GENERATORS[0], size=16, steps=100, eps=None, samples=4, seed=-1, face=0,
             stylegan2_search="256+1024", *rest, **kwargs):
    try:
        return pulse.clock_kind(generator, stylegan2_search), pulse.work_seconds(generator, steps, samples)
    except (TypeError, ValueError):
        return "pulse", ui.HEAVY_PRIOR_SECONDS


def weights_notice() -> str:
    missing = [m for m in MODEL_IDS if not availability(m)[0]]
    return "\n\n".join(f"**{label(m)}: weights missing.** {ui.missing_weights_message(m)}" for m in missing)


def label(model_id: str) -> str:
    return LABELS.get(get_entry(model_id).arch, model_id)


def shown(image: Image.Image, side: int = 128) -> Image.Image:
    """A tiny image enlarged with nearest neighbour so its pixels stay visible."""
    factor = max(1, side // image.size[0])
    return image.resize((image.size[0] * factor, image.size[1] * factor), Image.Resampling.NEAREST)


@ui.user_errors
@ui.in_lane(job_cost)
@ui.gpu(duration=gpu_seconds)
def upsample(image, generator=GENERATORS[0], size=16, steps=100, eps=pulse.EPS_DEFAULT, samples=4, seed=-1,
             face=0, stylegan2_search="256+1024", request: gr.Request = None, progress=gr.Progress()):
    """PULSE: search a face generator for high-resolution faces that downscale to a tiny input face (invented faces, not the person).

    Args:
        image: a tiny square face (8-64 px) or a photo with a face, which is then found, aligned and downscaled (an http(s) URL or a base64 data URL when called as a tool).
        generator: the "Generator" menu: dcgan.faces64 (64 px faces, offline) or stylegan2.ffhq1024 (1024 px faces).
        size: "Input size (px)": 8, 16, 32 or 64; the face is downscaled to size x size (below the generator's size, dividing it).
        steps: "Steps" of the latent search (10-500).
        eps: success when the L2 error between the downscaled face and the input is at most eps (1e-6 to 0.5).
        samples: "Samples": restarts run as one batch, one candidate face each (1-8).
        seed: "Seed"; -1 picks a random one (the seed used is returned and in the notes).
        face: "Face in a group photo": 0 asks when the photo has several faces, 1 = the most confident, 2 = the next...
        stylegan2_search: StyleGAN2 search resolution: 256+1024 (256 px, refine at 1024 px for the last 10% of the steps), 256 (render 1024 px once) or 1024; the reported L2 is always that of the 1024 px face.

    Returns:
        the best face (PNG with the settings in its metadata), all faces best first, the input next to each face downscaled, a summary ending with the gradio_client call that reproduces it, details (JSON: L2 and success per face), and the seed used.
    """
    settings = pulse.Settings(generator, size, steps, eps, samples, seed, face, stylegan2_search)
    first_use = "" if availability(generator)[0] else " (first use: downloading its weights)"
    progress(0, desc=f"Loading the generator{first_use}")
    watched = ui.sees_previews(request)  # scripts and agents get the notes only
    interval = PREVIEW_INTERVAL if watched else SCRIPT_UPDATE_INTERVAL
    shown_at = -interval
    with cancels.running(request) as cancel:
        for event in ui.offload_stream(pulse.upsample, image, settings, cancel=cancel):
            if isinstance(event, Progress):
                due = time.monotonic() - shown_at >= interval
                if watched or due:  # the page's progress bar counts every step
                    progress((event.step, event.total), desc="Searching", unit="steps")
                if due:
                    shown_at = time.monotonic()
                    face = ui.preview_file(event.preview, PREVIEW_SIDE) if watched else gr.skip()
                    yield face, gr.skip(), gr.skip(), event.note, gr.skip(), gr.skip()
    result, d = event, event.details
    call = reproduce.Call("/upsample", {**reproduce.files("image"), "generator": d["generator"], "size": d["size"],
                                        "steps": settings.steps, "eps": settings.eps, "samples": settings.samples,
                                        "seed": d["seed"], "face": settings.face,
                                        "stylegan2_search": settings.stylegan2_search})
    faces = [(call.stamp(images.to_pil(s.image, pulse.UNIT)), f"restart {s.restart}: L2 {s.l2:.2e}, "
              f"{'' if s.success else 'NOT '}within eps") for s in result.faces]
    low = result.input
    compared = [(shown(low.image), f"input {d['size']}x{d['size']}")]
    compared += [(low.aligned, "aligned face")] * bool(low.aligned)
    compared += [(shown(images.to_pil(s.downscaled, pulse.UNIT)), f"restart {s.restart} downscaled")
                 for s in result.faces]
    summary = ("" if result.success else "**No face within eps.** ") + f"{result.summary}\n\n{call.markdown()}"
    yield faces[0][0], faces, compared, summary, d, d["seed"]


with gr.Blocks(title=TITLE, delete_cache=ui.DELETE_CACHE) as demo:
    gr.Markdown(f"# {TITLE}\n{DESCRIPTION}")
    gr.Markdown(weights_notice())
    with gr.Row():
        with gr.Column():
            image = ui.ImageInput(label="Tiny face (8-64 px, square) or a photo with a face", height=280)
            generator = gr.Dropdown([(label(m), m) for m in GENERATORS], value=GENERATORS[0],
                                    label="Generator")
            size = ui.Radio([8, 16, 32, 64], value=16, label="Input size (px): the photo's face is downscaled to it")
            with gr.Row():
                run = gr.Button("Upsample", variant="primary")
                finish = gr.Button("Finish now")
                stop = gr.Button("Stop", variant="stop")
            expected = gr.Markdown(expected_time(GENERATORS[0], 100, 4))
            with gr.Accordion("Search settings", open=False):
                steps = ui.Slider(10, 500, value=100, step=10, label="Steps")
                eps = ui.Number(pulse.EPS_DEFAULT, minimum=1e-6, maximum=0.5,
                                label="eps: success when the L2 error is at most this")
                samples = ui.Slider(1, 8, value=4, step=1, label="Samples (restarts, run as one batch)")
                with gr.Row():
                    seed = ui.seed_field()
                    face = ui.Number(0, precision=0, label="Face in a group photo (0 = ask, 1 = most confident)")
                search = gr.Radio(SEARCH_LABELS, value="256+1024", label="StyleGAN2 search resolution")
            ui.reuse_settings("read_pulse_parameters", ("upsample",),
                              {"generator": generator, "size": size, "steps": steps, "eps": eps, "samples": samples,
                               "seed": seed, "face": face, "stylegan2_search": search})
        with gr.Column():
            current = gr.Image(label="Leading restart while searching, then the best face", format="png",
                               type="pil", height=280)
            summary = gr.Markdown()
            faces = gr.Gallery(label="High-resolution faces, best first", format="png", type="pil", columns=4)
    compared = gr.Gallery(label="Input and each face downscaled to the input size (shown enlarged)", format="png",
                          type="pil", columns=6, height=200, object_fit="contain", allow_preview=False)
    with gr.Row():
        details = gr.JSON(label="Details: final L2 and success per face")
        seed_used = ui.Number(label="Seed used", precision=0, interactive=False)
    gr.Examples([[str(EXAMPLES / name), px] for name, px in EXAMPLE_FILES], [image, size])
    event = run.click(upsample, [image, generator, size, steps, eps, samples, seed, face, search],
                      [current, faces, compared, summary, details, seed_used], api_name="upsample",
                      **ui.JOB_EVENTS)
    gr.on([generator.change, steps.change, samples.change, search.change], expected_time,
          [generator, steps, samples, search], expected, api_visibility="private", queue=False)
    finish.click(cancels.cancel, None, None, api_visibility="private")
    stop.click(cancels.cancel, None, None, cancels=[event], api_visibility="private")
    ui.model_card(MODEL_IDS)

if __name__ == "__main__":
    ui.launch(demo)
