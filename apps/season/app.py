"""Season swap (CycleGAN). Run: python apps/season/app.py"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import gradio as gr

from core import ui

TITLE = "Season swap (CycleGAN)"
DESCRIPTION = "Turn a summer landscape into winter and back, or give a photo a vintage look, at full resolution."
MODEL_IDS = ["cyclegan.summer2winter", "cyclegan.winter2summer", "cyclegan.vintage"]

with gr.Blocks(title=TITLE) as demo:
    gr.Markdown(f"# {TITLE}\n{DESCRIPTION}\n\n*This app is being built; the models it will use are listed below.*")
    ui.model_card(MODEL_IDS)

if __name__ == "__main__":
    ui.launch(demo)
