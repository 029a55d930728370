"""Latent lab: walk a face generator's latent space, do arithmetic on faces, take a photo "back to z".

Samples each have a seed and a downloadable latent; walks compare lerp and slerp; attribute
directions are mean latents of measured faces with minus without the attribute; photos are
inverted three ways (optimisation, a trained encoder, both) and edited through their latent.
Run: ``python apps/latent/app.py``. API: ``/sample``, ``/interpolate``, ``/direction``, ``/mix``,
``/invert``, ``/edit`` (arguments and outputs in apps/latent/README.md).
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import gradio as gr

from core import ui
from core.ui import reproduce
from core.pipelines.latent import attributes, lab
from core.weights import get_entry, models_for_app

TITLE = "Latent lab: walks, face arithmetic and back to z"
DESCRIPTION = (
    "What does a GAN's input mean? Sample faces from seeds, **walk** between two of them (linear or spherical), "
    "slide a face along **attribute directions** computed from measured faces (eyeglasses, head turn, mouth "
    "width, hair and skin brightness), mix StyleGAN2 styles, and take a **photo back to z** to edit it. The "
    "64 px DCGAN works offline; real photos are far from its faces, so inversions are approximate."
)
MODEL_IDS = models_for_app("latent")  # the generators, the encoder and the glasses classifier
ui.preload_on_zero_gpu(MODEL_IDS, load=lab.load_float32)  # ZeroGPU only: models go on the GPU at start-up
DATA = Path(__file__).resolve().parent / "data"
# Attribute directions computed here and shipped with the app: data/directions_<family>_<tag>.safetensors.
SHIPPED_DIRECTIONS = {model_id: path for model_id in lab.generator_ids()
                      if (path := DATA / f"directions_{model_id.replace('.', '_')}.safetensors").is_file()}
DEFAULT_GENERATOR = lab.default_generator()
METHODS = [("Optimisation (pixel loss)", "optimise"), ("Encoder (one pass)", "encoder"),
           ("Encoder, then optimisation", "hybrid")]
BLENDS = [("Add the edit's change (keeps the photo)", "residual"), ("Paste the generated face", "direct")]
EXAMPLES = Path(__file__).resolve().parent / "examples"


def gpu_window(position: int):
    """ZeroGPU seconds for a handler whose argument ``position`` is the generator: 30 for the DCGAN,
    180 for StyleGAN2 (1024 px renders; its directions are computed on first use)."""
    def seconds(*args, **kwargs):
        model = args[position] if len(args) > position else kwargs.get("generator", lab.default_generator())
        return 30 if model in lab.generator_ids() and get_entry(model).arch == "dcgan" else 180
    return seconds


def endpoint(generator_at: int, notes: int = -1):
    """Every handler's decorators: clear user errors, the heavy lane, a ZeroGPU window sized by the
    generator (argument ``generator_at``), and the reproducing call in its PNGs and its notes (output ``notes``)."""
    reproducible = reproduce.reproducible(notes, paths=("file_a", "file_b", "latent_file"))
    return lambda handler: ui.user_errors(ui.heavy(ui.gpu(duration=gpu_window(generator_at))(reproducible(handler))))


@endpoint(0)
def sample(generator, seed, count=8, psi=0.7):
    """Sample faces from seeds; each face has its own seed and a downloadable latent.
    Args:
        generator: "Generator": "dcgan.faces64" (offline) or "stylegan2.ffhq1024".
        seed: "First seed": sample i uses seed + i.
        count: "Samples", 1-32.
        psi: "Truncation psi (StyleGAN2)", 0-1: 1 = no truncation.

    Returns:
        The faces (captions "seed N"), one latent .safetensors file per face, and notes.
    """
    from core.pipelines.latent import sample as task

    result = ui.offload(task.run, task.Settings(generator, int(seed), int(count), float(psi)))
    return [(image, f"seed {s}") for image, s in zip(result.images, result.seeds)], result.latent_files, result.notes


@endpoint(0, notes=2)
def interpolate(generator, seed_a, file_a, seed_b, file_b, space="z", method="slerp", frames=16, psi=0.7):
    """Walk from face A to face B in the latent space, linear or spherical, and measure how smooth both walks are.
    Args:
        generator: "Generator": "dcgan.faces64" (offline) or "stylegan2.ffhq1024".
        seed_a: "Face A: seed", an integer >= 0 (ignored when file_a is given).
        file_a: "or A's latent file": a .safetensors (from /sample or /invert) or .npy latent, or empty.
        seed_b: "Face B: seed", an integer >= 0 (ignored when file_b is given).
        file_b: "or B's latent file", like file_a.
        space: "Latent space": "z", or "w" (StyleGAN2 only).
        method: "Interpolation": "lerp" or "slerp".
        frames: "Frames", 2-60.
        psi: "Truncation psi (StyleGAN2)", 0-1: 1 = no truncation.

    Returns:
        The animation (WebP), the strip of frames (PNG), a Markdown table of neighbour-frame distances for lerp and slerp, and details (JSON).
    """
    from core.pipelines.latent import walk as task

    result = ui.offload(task.run, lab.LatentSource(seed_a, file_a), lab.LatentSource(seed_b, file_b),
                        task.Settings(generator, space, method, int(frames), float(psi)))
    return result.animation, result.strip, result.notes, {k: result.details[k] for k in ("from", "to", "smoothness")}


@endpoint(0)
def direction(generator, seed_a, file_a, attribute="eyeglasses", alpha=2.0, steps=7, space="z", psi=0.7):
    """Slide face A along an attribute direction computed from measured faces; each frame is measured again.
    Args:
        generator: "Generator": "dcgan.faces64" (offline) or "stylegan2.ffhq1024".
        seed_a: "Face A: seed", an integer >= 0 (ignored when file_a is given).
        file_a: "or A's latent file": a .safetensors (from /sample or /invert) or .npy latent, or empty.
        attribute: "Direction": eyeglasses, yaw, mouth_width, hair_brightness or skin_brightness.
        alpha: "Alpha", 0-4: the slide goes from -alpha to +alpha (measured defaults: 2 for eyeglasses).
        steps: "Frames", 1-11.
        space: "Latent space": "z", or "w" (StyleGAN2).
        psi: "Truncation psi (StyleGAN2)", 0-1: 1 = no truncation.

    Returns:
        The frames (captions with alpha and the measurement) and notes on how the direction was computed.
    """
    from core.pipelines.latent import direction as task

    settings = task.Settings(generator, attribute, float(alpha), int(steps), space, float(psi))
    result = ui.offload(task.run, lab.LatentSource(seed_a, file_a), settings, shipped=SHIPPED_DIRECTIONS)
    return list(zip(result.images, result.captions)), result.notes


@endpoint(0)
def mix(generator, seed_a, file_a, seed_b, file_b, layers="coarse", psi=0.7):
    """StyleGAN2 style mixing: face A with the coarse, middle or fine W+ layers of face B.
    Args:
        generator: "Generator": "dcgan.faces64" (offline) or "stylegan2.ffhq1024".
        seed_a: "Face A: seed", an integer >= 0 (ignored when file_a is given).
        file_a: "or A's latent file": a .safetensors (from /sample or /invert) or .npy latent, or empty.
        seed_b: "Face B: seed", an integer >= 0 (ignored when file_b is given).
        file_b: "or B's latent file", like file_a.
        layers: "B's layers": "coarse" (4-8 px), "middle" (16-32 px) or "fine" (64 px and up).
        psi: "Truncation psi (StyleGAN2)", 0-1: 1 = no truncation.

    Returns:
        A, B and A with B's layers, and notes naming the W+ layers replaced.
    """
    from core.pipelines.latent import mix as task

    result = ui.offload(task.run, lab.LatentSource(seed_a, file_a), lab.LatentSource(seed_b, file_b),
                        task.Settings(generator, layers, float(psi)))
    return list(zip(result.images, result.captions)), result.notes


@endpoint(1)
def invert(photo, generator=DEFAULT_GENERATOR, method="hybrid", steps=100):
    """Back to z: find the latent of a face photo by optimisation, the trained encoder, or both.
    Args:
        photo: "Photo with one face", or a 64x64 aligned face (an http(s) URL or a base64 data URL when called as a tool).
        generator: "Generator": "dcgan.faces64" (offline) or "stylegan2.ffhq1024".
        method: "Inversion": "optimise", "encoder" or "hybrid" (encoder, then optimisation).
        steps: "Optimisation steps", 10-500.

    Returns:
        The aligned face, its reconstruction G(z), the latent (.safetensors) and notes with the pixel error.
    """
    from core.pipelines.latent import invert as task

    result = ui.offload(task.run, photo, task.Settings(generator, method, int(steps)))
    return result.aligned.image, result.reconstruction, result.latent_file, result.notes


@endpoint(1)
def edit(photo, generator=DEFAULT_GENERATOR, latent_file=None, method="hybrid", attribute="eyeglasses", alpha=2.0,
         blend="residual", steps=100):
    """Edit a face photo through its latent: move it along an attribute direction and put the change back into the photo.
    Args:
        photo: "Photo with one face", as for /invert.
        generator: "Generator": "dcgan.faces64" (offline) or "stylegan2.ffhq1024".
        latent_file: the photo's latent from /invert (.safetensors or .npy), or empty to invert now.
        method: "Inversion" used when latent_file is empty: "optimise", "encoder" or "hybrid".
        attribute: "Direction": eyeglasses, yaw, mouth_width, hair_brightness or skin_brightness.
        alpha: "Alpha", -4 to 4.
        blend: "Back into the photo": "residual" (add the edit's change) or "direct" (paste the generated face).
        steps: "Optimisation steps", 10-500.

    Returns:
        The edited photo (same size), the steps (aligned face, G(z), G(z + alpha d), edited face) and notes.
    """
    from core.pipelines.latent import edit as task

    settings = task.Settings(generator, method, attribute, float(alpha), blend, int(steps))
    result = ui.offload(task.run, photo, latent_file, settings, shipped=SHIPPED_DIRECTIONS)
    return result.image, result.steps, result.notes


def pick(evt: gr.SelectData, base_seed, target, seed_a, seed_b):
    seed = int(base_seed) + evt.index
    return (seed, seed_b) if target == "A" else (seed_a, seed)


with gr.Blocks(title=TITLE, delete_cache=ui.DELETE_CACHE) as demo:
    gr.Markdown(f"# {TITLE}\n{DESCRIPTION}")
    with gr.Row():
        generator = gr.Dropdown([(get_entry(m).title, m) for m in lab.generator_ids()], value=lab.default_generator(),
                                label="Generator")
        psi = ui.Slider(0.0, 1.0, value=0.7, step=0.05, label="Truncation psi (StyleGAN2)")
        space = gr.Radio(["z", "w"], value="z", label="Latent space (W: StyleGAN2)")
    with gr.Row():
        seed_a = ui.Number(0, precision=0, minimum=0, maximum=2**31 - 1, label="Face A: seed")
        file_a = gr.File(label="or A's latent file", file_types=[".safetensors", ".npy"], type="filepath", height=80)
        seed_b = ui.Number(1, precision=0, minimum=0, maximum=2**31 - 1, label="Face B: seed")
        file_b = gr.File(label="or B's latent file", file_types=[".safetensors", ".npy"], type="filepath", height=80)
    with gr.Tab("Explore"):
        with gr.Row():
            seed = ui.Number(0, precision=0, minimum=0, maximum=2**31 - 1, label="First seed")
            count = ui.Slider(1, 32, value=8, step=1, label="Samples")
            target = gr.Radio(["A", "B"], value="A", label="Clicking a sample makes it face")
        run_sample = gr.Button("Sample", variant="primary")
        grid = gr.Gallery(label="Samples (click one to pick it)", columns=8, format="png", height=260)
        latents = gr.File(label="Each sample's latent (upload one above to use it later)", file_count="multiple")
        sample_notes = gr.Markdown()
    with gr.Tab("Walk"):
        with gr.Row():
            method = gr.Radio(["lerp", "slerp"], value="slerp", label="Interpolation")
            frames = ui.Slider(2, 60, value=16, step=1, label="Frames")
        run_walk = gr.Button("Walk from A to B", variant="primary")
        with gr.Row():
            animation = gr.Image(label="Animation (WebP)", type="filepath", height=256)
            walk_notes = gr.Markdown()
        strip = gr.Image(label="Frames", type="pil", format="png")
        walk_details = gr.JSON(label="Details")
    with gr.Tab("Arithmetic"):
        with gr.Row():
            attribute = gr.Dropdown(list(attributes.ATTRIBUTES), value="eyeglasses", label="Direction")
            alpha = ui.Slider(0.0, 4.0, value=lab.DEFAULT_ALPHA["eyeglasses"], step=0.25, label="Alpha: the slide goes from -alpha to +alpha")
            steps = ui.Slider(1, 11, value=7, step=1, label="Frames")
        run_direction = gr.Button("Slide face A along the direction", variant="primary")
        slide = gr.Gallery(label="Face A along the direction", columns=7, format="png", height=220)
        direction_notes = gr.Markdown()
    with gr.Tab("Style mixing (StyleGAN2)"):
        layers = gr.Radio(["coarse", "middle", "fine"], value="coarse", label="B's layers")
        run_mix = gr.Button("Mix", variant="primary")
        mixed = gr.Gallery(label="A, B, A with B's layers", columns=3, format="png", height=300)
        mix_notes = gr.Markdown()
    with gr.Tab("Back to z: edit a photo"):
        with gr.Row():
            photo = ui.ImageInput(label="Photo with one face", sources=["upload", "clipboard"], height=260)
            with gr.Column():
                inversion = gr.Radio(METHODS, value="hybrid", label="Inversion")
                inv_steps = ui.Slider(10, 500, value=100, step=10, label="Optimisation steps")
                run_invert = gr.Button("Invert", variant="primary")
        with gr.Row():
            aligned = gr.Image(label="Aligned face", type="pil", format="png", height=160)
            recon = gr.Image(label="G(z)", type="pil", format="png", height=160)
            latent_file = gr.File(label="Its latent (or upload one for the edit)", type="filepath", height=80,
                                  file_types=[".safetensors", ".npy"])
        invert_notes = gr.Markdown()
        with gr.Row():
            edit_attribute = gr.Dropdown(list(attributes.ATTRIBUTES), value="eyeglasses", label="Direction")
            edit_alpha = ui.Slider(-4.0, 4.0, value=lab.DEFAULT_ALPHA["eyeglasses"], step=0.25, label="Alpha")
            blend = gr.Radio(BLENDS, value="residual", label="Back into the photo")
        run_edit = gr.Button("Edit the photo")
        edited = gr.Image(label="Edited photo", type="pil", format="png")
        edit_crops = gr.Gallery(label="Steps", columns=4, format="png", height=160)
        edit_notes = gr.Markdown()
    with gr.Row():
        ui.reuse_settings("read_latent_parameters", ("sample", "interpolate", "direction", "mix"),
                          {"generator": generator, "seed": seed, "count": count, "psi": psi, "seed_a": seed_a,
                           "seed_b": seed_b, "space": space, "method": method, "frames": frames,
                           "attribute": attribute, "alpha": alpha, "steps": steps, "layers": layers})
        ui.reuse_settings("read_latent_edit_parameters", ("invert", "edit"),
                          {"generator": generator, "method": inversion, "steps": inv_steps,
                           "attribute": edit_attribute, "alpha": edit_alpha, "blend": blend})
    gr.Examples([[str(EXAMPLES / "photo.jpg")], [str(EXAMPLES / "face64.png")]], [photo])
    slot = dict(concurrency_id="model", concurrency_limit=1)
    run_sample.click(sample, [generator, seed, count, psi], [grid, latents, sample_notes], api_name="sample", **slot)
    for menu, slider in ((attribute, alpha), (edit_attribute, edit_alpha)):  # each direction's measured default
        menu.change(lambda name: lab.DEFAULT_ALPHA.get(name, 1.5), menu, slider, api_visibility="private")
    grid.select(pick, [seed, target, seed_a, seed_b], [seed_a, seed_b], api_visibility="private")
    run_walk.click(interpolate, [generator, seed_a, file_a, seed_b, file_b, space, method, frames, psi],
                   [animation, strip, walk_notes, walk_details], api_name="interpolate", **slot)
    run_direction.click(direction, [generator, seed_a, file_a, attribute, alpha, steps, space, psi],
                        [slide, direction_notes], api_name="direction", **slot)
    run_mix.click(mix, [generator, seed_a, file_a, seed_b, file_b, layers, psi], [mixed, mix_notes], api_name="mix",
                  **slot)
    run_invert.click(invert, [photo, generator, inversion, inv_steps], [aligned, recon, latent_file, invert_notes],
                     api_name="invert", **slot)
    run_edit.click(edit, [photo, generator, latent_file, inversion, edit_attribute, edit_alpha, blend, inv_steps],
                   [edited, edit_crops, edit_notes], api_name="edit", **slot)
    gr.Markdown("Recipes and measured results (direction flip rates, lerp vs slerp, the three inversions): "
                "`apps/latent/README.md`.")
    ui.model_card(MODEL_IDS)

if __name__ == "__main__":
    ui.launch(demo)
