"""Text to image (diffusers). Run: python apps/text2image/app.py"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import gradio as gr

from core import ui

TITLE = "Text to image (diffusers)"
DESCRIPTION = "Type a prompt and get an image from a small Stable Diffusion model."
MODEL_IDS = ["diffusers.bk_sdm_tiny"]

with gr.Blocks(title=TITLE) as demo:
    gr.Markdown(f"# {TITLE}\n{DESCRIPTION}\n\n*This app is being built; the models it will use are listed below.*")
    ui.model_card(MODEL_IDS)

if __name__ == "__main__":
    ui.launch(demo)
