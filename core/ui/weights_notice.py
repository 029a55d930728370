"""The one wording of "these weights are not on this machine, and this is how to get them".

Every page, status line, model card and health report says it through these functions, on top
of ``core.weights.availability`` (is it here, without downloading) and ``core.weights.how_to_provide``
(the ways to put it here, which differ for a diffusers snapshot and a single safetensors file).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from core.weights import about_size, availability, download_bytes, get_entry, how_to_provide


def fetch_command(model_ids: Iterable[str]) -> str:
    """The one command that downloads (and converts) the weights of ``model_ids``."""
    return "python -m core.weights fetch " + " ".join(model_ids)


def missing_models(model_ids: Iterable[str]) -> list[str]:
    """The ids among ``model_ids`` whose weights are not on this machine (nothing is downloaded)."""
    return [model_id for model_id in model_ids if not availability(model_id)[0]]


def missing_weights_message(model_id: str) -> str:
    """A sentence saying that ``model_id``'s weights (and their download size, where the manifest
    states it) are not here, then every way to provide them."""
    entry, size = get_entry(model_id), download_bytes(model_id)
    named = f"`{model_id}`, {about_size(size)}" if size else f"`{model_id}`"
    return f"The weights of {entry.title} ({named}) are not on this machine. " + how_to_provide(entry)


def weights_status(model_id: str) -> str:
    """One Markdown line for beside a model menu: here, or missing and how to get them."""
    if availability(model_id)[0]:
        return f"Weights of `{model_id}`: available here."
    return "**Weights missing.** " + missing_weights_message(model_id)


def weights_notice(model_ids: Iterable[str], labels: Mapping[str, str] | None = None) -> str:
    """A Markdown paragraph per model of ``model_ids`` whose weights are missing (named by ``labels``
    where given, else by its manifest title); empty when every one is here."""
    labels = labels or {}
    return "\n\n".join(f"**{labels.get(m) or get_entry(m).title}: weights missing.** {missing_weights_message(m)}"
                       for m in missing_models(model_ids))
