"""PULSE face upsampling: search a face generator's latent space for faces that downscale to your input.

Send a tiny square face (8-64 px), or a photo: its face is then found, aligned and downscaled
first ("downscale, then recover"). Every restart is one candidate face; all of them match the
input pixels and none of them is the real person. Run: ``python apps/pulse/app.py``.
API: ``/upsample`` (image, generator, size, steps, eps, samples, seed, face, stylegan2_search) ->
(current/best HR face, HR faces, input vs downscaled faces, summary, details JSON, seed used);
``/read_pulse_parameters`` (a result PNG) -> the settings it was made with.
"""

import secrets
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import gradio as gr
from PIL import Image

from core import images, ui
from core.ui import reproduce
from core.pipelines import pulse
from core.weights import availability

TITLE = "PULSE face upsampling"
DESCRIPTION = (
    "PULSE (Menon et al., CVPR 2020) does not sharpen pixels: it searches a face generator for high-resolution "
    "faces that, once downscaled, give back your low-resolution input. Many faces do, so each restart gives "
    "another one; **they are invented faces, not the person in the picture**, and the search can fail (then the "
    "closest face is shown with its error). The generators carry their training data's biases."
)
GENERATORS = {"dcgan.faces64": "DCGAN 64 px faces (offline)", "stylegan2.ffhq1024": "StyleGAN2 FFHQ 1024 px"}
MODEL_IDS = list(GENERATORS)
EXAMPLES = Path(__file__).parent / "examples"
PREVIEW_INTERVAL = 0.25  # seconds between streamed previews (the first one is shown at once)
EXAMPLE_FILES = [("dcgan_face_16.png", 16), ("dcgan_face_8.png", 8), ("astronaut_photo.jpg", 16)]
_stop_flags: dict[str, threading.Event] = {}  # session -> "finish now" flag
# StyleGAN2 search resolution: (search px, fraction of the steps refined at full resolution)
SEARCH_MODES = {"256+1024": (256, 0.1), "256": (256, 0.0), "1024": (None, 0.0)}
SEARCH_LABELS = [("256 px, then 1024 px for the last 10% of the steps", "256+1024"),
                 ("256 px only, render 1024 px once (fastest)", "256"), ("1024 px all the way (slowest)", "1024")]


# GPU seconds per search step and sample on a ZeroGPU slice (estimates; bench/gpu_check.py measures them).
GPU_SECONDS_PER_STEP = {"dcgan.faces64": 0.005, "stylegan2.ffhq1024": 0.08}
ui.preload_on_zero_gpu(MODEL_IDS, load=pulse.load_generator)


def gpu_seconds(image, generator="dcgan.faces64", size=16, steps=100, eps=None, samples=4, *args, **kwargs) -> float:
    """The ZeroGPU window one search asks for: start-up plus steps x samples."""
    return 15 + int(steps) * int(samples) * GPU_SECONDS_PER_STEP.get(generator, max(GPU_SECONDS_PER_STEP.values()))


def expected_time(generator, steps, samples, search="256+1024") -> str:
    """The line under the button: how long this search should take here."""
    from core.limits import expected_time_text

    try:
        return f"Expected time: {expected_time_text(pulse.expected_seconds(generator, steps, samples, search))}."
    except (TypeError, ValueError):
        return ""


def job_cost(image, generator="dcgan.faces64", size=16, steps=100, eps=None, samples=4, seed=-1, face=0,
             stylegan2_search="256+1024", *rest, **kwargs):
    try:
        return (pulse.clock_kind(generator, stylegan2_search),
                pulse.expected_seconds(generator, steps, samples, stylegan2_search))
    except (TypeError, ValueError):
        return "pulse", ui.HEAVY_PRIOR_SECONDS


def weights_notice() -> str:
    missing = [m for m in MODEL_IDS if not availability(m)[0]]
    return "\n\n".join(f"**{GENERATORS[m]}: weights missing.** {ui.missing_weights_message(m)}" for m in missing)


def shown(image: Image.Image, side: int = 128) -> Image.Image:
    """A tiny image enlarged with nearest neighbour so its pixels stay visible."""
    factor = max(1, side // image.size[0])
    return image.resize((image.size[0] * factor, image.size[1] * factor), Image.Resampling.NEAREST)


@ui.user_errors
@ui.in_lane(job_cost)
@ui.gpu(duration=gpu_seconds)
def upsample(image, generator="dcgan.faces64", size=16, steps=100, eps=pulse.EPS_DEFAULT, samples=4, seed=-1,
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
    if image is None:
        raise ValueError("Upload a face: a tiny square face (8-64 px) or a photo with a face.")
    if generator not in GENERATORS:
        raise ValueError(f"Unknown generator {generator!r}; choose one of {', '.join(GENERATORS)}.")
    from core.device import get_device
    from core.limits import JOB_CLOCK, Budget, max_search_work

    work, cap = int(steps) * int(samples), max_search_work(get_device().type)
    if work > cap:
        raise ValueError(f"{int(steps)} steps x {int(samples)} samples = {work} is more than this server allows in one "
                         f"request ({cap} on {get_device().type}, GANHUB_MAX_STEP_SAMPLES): ask for fewer steps or "
                         "samples.")
    budget = Budget()
    seed = secrets.randbelow(2**31) if seed is None or int(seed) < 0 else int(seed)
    first_use = "" if availability(generator)[0] else " (first use: downloading its weights)"
    progress(0, desc=f"Loading the generator{first_use}")
    if stylegan2_search not in SEARCH_MODES:
        raise ValueError(f"stylegan2_search must be one of {', '.join(SEARCH_MODES)}, not {stylegan2_search!r}.")
    search_px, refine = SEARCH_MODES[stylegan2_search]
    adapter = pulse.load_adapter(generator, search_resolution=search_px)
    size = int(size)
    if size >= adapter.search_size or adapter.search_size % size:
        raise ValueError(f"{GENERATORS[generator]} needs an input size below {adapter.search_size} that divides it.")
    low = pulse.low_res_input(images.load_image(image), size, adapter.size, adapter.template,
                              face_index=int(face) - 1 if face else None)
    session = request.session_hash if request is not None else ""
    stop_flag = _stop_flags[session] = threading.Event()
    inputs = [(shown(low.image), f"input {size}x{size}")] + ([(low.aligned, "aligned face")] if low.aligned else [])
    shown_at = -PREVIEW_INTERVAL
    try:
        for event in pulse.pulse_iter(adapter, low.tensor, steps=int(steps), eps=float(eps), restarts=int(samples),
                                      seed=seed, preview_every=1 if adapter.search_size > 64 else 5,
                                      should_stop=stop_flag.is_set, refine_steps=round(refine * int(steps)),
                                      budget=budget):
            if isinstance(event, pulse.PulseProgress):
                progress((event.step, event.steps), desc="Searching", unit="steps")
                if time.monotonic() - shown_at < PREVIEW_INTERVAL:
                    continue  # each preview is an image to encode and ship: a few per second are enough
                shown_at = time.monotonic()
                status = (f"{low.note} Step {event.step} of {event.steps}: best L2 {min(event.best_l2):.2e} "
                          f"(eps {float(eps):g}).")
                yield pulse.unit_to_pil(event.preview), gr.skip(), gr.skip(), status, gr.skip(), seed
    finally:
        _stop_flags.pop(session, None)
    result = event
    JOB_CLOCK.record(pulse.clock_kind(generator, stylegan2_search), max(1, result.steps) * int(samples), result.seconds)
    call = reproduce.Call("/upsample", {**reproduce.files("image"), "generator": generator, "size": size,
                                        "steps": int(steps), "eps": float(eps), "samples": int(samples), "seed": seed,
                                        "face": int(face or 0), "stylegan2_search": stylegan2_search})
    faces = [(call.stamp(pulse.unit_to_pil(s.image)), f"restart {s.restart}: L2 {s.l2:.2e}, "
              f"{'' if s.success else 'NOT '}within eps") for s in result.samples]
    compared = inputs + [(shown(pulse.unit_to_pil(s.downscaled)), f"restart {s.restart} downscaled")
                         for s in result.samples]
    details = {"success": result.success, "seed": seed, "eps": result.eps, "steps": result.steps,
               "seconds": round(result.seconds, 2), "generator": generator, "input": low.note,
               "samples": [{"restart": s.restart, "l2": s.l2, "success": s.success, "start_l2": s.start_l2,
                            "first_success_step": s.first_success_step} for s in result.samples]}
    summary = ("" if result.success else "**No face within eps.** ") + f"{low.note} {result.message}\n\n{call.markdown()}"
    yield faces[0][0], faces, compared, summary, details, seed


def finish_now(request: gr.Request):
    flag = _stop_flags.get(request.session_hash)
    if flag is not None:
        flag.set()


with gr.Blocks(title=TITLE, delete_cache=ui.DELETE_CACHE) as demo:
    gr.Markdown(f"# {TITLE}\n{DESCRIPTION}")
    gr.Markdown(weights_notice())
    with gr.Row():
        with gr.Column():
            image = ui.ImageInput(label="Tiny face (8-64 px, square) or a photo with a face", height=280)
            generator = gr.Dropdown([(label, m) for m, label in GENERATORS.items()], value="dcgan.faces64",
                                    label="Generator")
            size = ui.Radio([8, 16, 32, 64], value=16, label="Input size (px): the photo's face is downscaled to it")
            with gr.Row():
                run = gr.Button("Upsample", variant="primary")
                finish = gr.Button("Finish now")
                stop = gr.Button("Stop", variant="stop")
            expected = gr.Markdown(expected_time("dcgan.faces64", 100, 4))
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
    finish.click(finish_now, None, None, api_visibility="private")
    stop.click(finish_now, None, None, cancels=[event], api_visibility="private")
    ui.model_card(MODEL_IDS)

if __name__ == "__main__":
    ui.launch(demo)
