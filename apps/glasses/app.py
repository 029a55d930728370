"""Eyeglasses transfer (GeneGAN, Zhou et al. 2017): B wearing A's glasses, and A without them.

Each photo's face is found and aligned offline (``core.faces``), GeneGAN swaps the "object" part
of the two 64x64 crops, and by default its result only guides full-resolution edits
(``core.pipelines.glasses.photo``): A's frames are found and inpainted, and B gets A's real frames where
GeneGAN puts glasses; every other pixel stays untouched. Run: ``python apps/glasses/app.py``.
API: ``/swap`` (image_a, image_b, strength, blend, passes) -> (b_with_glasses, a_without_glasses,
crops, notes); ``/read_glasses_parameters`` (a result PNG) -> the settings it was made with.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import gradio as gr

from core import ui
from core.ui import reproduce
from core.weights import model_for_role, models_for_app

TITLE = "Eyeglasses transfer (GeneGAN)"
DESCRIPTION = (
    "Put the exact eyeglasses of person **A** on person **B**, and take them off A. Upload a photo of "
    "A wearing glasses and one of B without; each must show one clear, frontal face (a 64x64 face "
    "aligned like the examples is used as it is). The model works on 64x64 aligned faces; by default it "
    "only shows *where* the glasses are: A's frames are then found and filled in at the photo's resolution, "
    "and B receives A's real frames. Eyes behind clear lenses and everything else stay exactly as they were."
)
MODEL_IDS = models_for_app("glasses")  # GeneGAN, its classifier and the face detector
# ZeroGPU only: GeneGAN and the classifier go on the GPU at start-up (the face detector runs on the CPU).
ui.preload_on_zero_gpu([model_for_role("glasses", role) for role in ("generator", "classifier")])
EXAMPLES = Path(__file__).resolve().parent / "examples"
CROPS = (("a", "A aligned"), ("b", "B aligned"), ("b_with", "B + A's glasses"), ("a_without", "A - glasses"))
BLENDS = {
    "Photo (A's real frames, inpainted removal)": "photo",
    "Auto (add the change to B, paste the output on A)": "auto",
    "Add the model's change (keeps photo detail)": "residual",
    "Paste the model's output (paper)": "direct",
}


@ui.user_errors
@ui.light  # two 64x64 faces: a few milliseconds of model work after face detection
@ui.gpu(duration=30)
def swap(image_a, image_b, strength, blend, passes=2):
    """GeneGAN eyeglasses transfer: B wearing A's exact glasses, and A without them; only each photo's eye band changes.

    Args:
        image_a: "A: face wearing glasses": a photo with one clear, frontal face, or a 64x64 aligned face (an http(s) URL or a base64 data URL when called as a tool).
        image_b: "B: face without glasses", the same kind of image.
        strength: "Attribute strength": how much of A's glasses B receives, 0-1 (A keeps 1 - strength of them).
        blend: "Blend into the photo": one of the labels "Auto (add the change to B, paste the output on A)", "Add the model's change (keeps photo detail)", "Paste the model's output (paper)".
        passes: "Removal passes", 1-3: 1 = the paper's join(A, 0); more passes take off more of thick frames (more blur).

    Returns:
        B with A's glasses and A without glasses (PNGs with the settings in their metadata), the aligned 64x64 crops and the masks used (one captioned image), and notes ending with the gradio_client call that reproduces them.
    """
    from core.pipelines.glasses import swap as glasses

    settings = glasses.Settings(strength=float(strength), mode=BLENDS.get(blend, "photo"), removal_passes=int(passes))
    result = glasses.run(image_a, image_b, settings)
    # One captioned image, not a gallery: each file a call returns costs a script one more request.
    crops = ui.contact_sheet([[(result.crops[k].resize((192, 192), 0), label) for k, label in CROPS],
                              result.previews], heights=(192, 128))
    call = reproduce.Call("/swap", {**reproduce.files("image_a", "image_b"), "strength": float(strength),
                                    "blend": blend, "passes": int(passes)})
    notes = ("\n".join(f"- {n}" for n in result.notes) or "Done.") + "\n\n" + call.markdown()
    return call.stamp(result.b_with_glasses), call.stamp(result.a_without_glasses), crops, notes


with gr.Blocks(title=TITLE, delete_cache=ui.DELETE_CACHE) as demo:
    gr.Markdown(f"# {TITLE}\n{DESCRIPTION}")
    with gr.Row():
        image_a = ui.ImageInput(label="A: face wearing glasses", sources=["upload", "clipboard"])
        image_b = ui.ImageInput(label="B: face without glasses", sources=["upload", "clipboard"])
    with gr.Row():
        strength = ui.Slider(0.0, 1.0, value=1.0, step=0.05, label="Attribute strength",
                             info="How strongly B wears A's glasses (64 px modes: A keeps 1 - strength of them)")
        blend = gr.Radio(list(BLENDS), value=next(iter(BLENDS)), label="Blend into the photo")
        passes = ui.Slider(1, 3, value=2, step=1, label="Removal passes (64 px modes)",
                           info="1 = the paper's join(A, 0); more passes take off more of thick frames (more blur)")
    run = gr.Button("Swap glasses", variant="primary")
    ui.reuse_settings("read_glasses_parameters", ("swap",), {"strength": strength, "blend": blend, "passes": passes})
    with gr.Row():
        b_with = gr.Image(label="B with A's glasses", format="png", type="pil")
        a_without = gr.Image(label="A without glasses", format="png", type="pil")
    crops = gr.Image(label="Aligned 64x64 crops (model input and result) and, for photos, the masks used",
                     format="png", type="pil", buttons=["download", "fullscreen"])  # PNG: the crops' pixels stay sharp
    notes = gr.Markdown()
    run.click(swap, [image_a, image_b, strength, blend, passes], [b_with, a_without, crops, notes], api_name="swap",
              **ui.JOB_EVENTS)
    if EXAMPLES.exists():
        gr.Examples([[str(EXAMPLES / "grace_hopper.jpg"), str(EXAMPLES / "b_photo.jpg")],
                     [str(EXAMPLES / "a_glasses.png"), str(EXAMPLES / "b_face64.png")],
                     [str(EXAMPLES / "a_photo_glasses.jpg"), str(EXAMPLES / "b_face64.png")],
                     [str(EXAMPLES / "a_glasses.png"), str(EXAMPLES / "b_photo.jpg")]],
                    [image_a, image_b])
    gr.Markdown("Data: trained by this project on synthetic faces (DCGAN faces with rendered glasses); "
                "see `apps/glasses/README.md` for the recipe and measured results.")
    ui.model_card(MODEL_IDS)

if __name__ == "__main__":
    ui.launch(demo)
