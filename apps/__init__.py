"""The hub's Gradio apps: one folder each, ``apps/<name>/app.py`` with a module-level ``demo``."""

# Folder names in the order the hub shows them.
APP_NAMES = ("inpaint", "sketch2photo", "season", "pulse", "glasses", "latent", "text2image")
