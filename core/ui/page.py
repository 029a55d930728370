"""The parts of an app's page that describe its models: the model card, from the manifest."""

from __future__ import annotations

from collections.abc import Iterable

import gradio as gr

from core.ui.weights_notice import fetch_command
from core.weights import availability, get_entry


def model_card_markdown(model_ids: Iterable[str]) -> str:
    """A compact Markdown table: model, licence, paper, and whether its weights are here."""
    rows = ["| model | licence | paper | weights here |", "|---|---|---|---|"]
    for model_id in model_ids:
        entry = get_entry(model_id)
        status = "yes" if availability(model_id)[0] else f"no: `{fetch_command([model_id])}`"
        licence = entry.license.replace("|", "/")
        rows.append(f"| **{entry.title}** (`{model_id}`) | {licence} | {entry.info.get('paper', '')} | {status} |")
    return "\n".join(rows)


def model_card(model_ids: Iterable[str]) -> gr.Markdown:
    """The model-card table as a Markdown component (built once, no API endpoint of its own)."""
    return gr.Markdown(model_card_markdown(model_ids))
