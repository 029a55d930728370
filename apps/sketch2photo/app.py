"""Sketch to photo (pix2pix). Run: python apps/sketch2photo/app.py"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import gradio as gr

from core import ui

TITLE = "Sketch to photo (pix2pix)"
DESCRIPTION = "Draw black strokes on white and pix2pix turns them into a photo."
MODEL_IDS = ["pix2pix.edges2faces64", "pix2pix.edges2shoes", "pix2pix.edges2shoes_resnet"]

with gr.Blocks(title=TITLE) as demo:
    gr.Markdown(f"# {TITLE}\n{DESCRIPTION}\n\n*This app is being built; the models it will use are listed below.*")
    ui.model_card(MODEL_IDS)

if __name__ == "__main__":
    ui.launch(demo)
