"""Which manifest models the inpainting tasks use, read from the manifest (no ids in code).

The inpaint app's models are the entries whose ``apps`` list holds ``inpaint``; each names its
role in the manifest's ``roles`` (``{"inpaint": ...}``): ``fill`` (a hole-filling generator, named
after its ``arch``: ``migan`` or ``lama``) or ``selector`` (the object selector, Segment Anything).
"""

from __future__ import annotations

APP = "inpaint"


def _with_role(role: str) -> list:
    from core.weights import get_entry, models_for_role

    return [get_entry(model_id) for model_id in models_for_role(APP, role)]


def fill_model_id(method: str) -> str:
    """The manifest id of the fill model for ``method`` (``migan`` or ``lama``)."""
    for entry in _with_role("fill"):
        if entry.arch == method:
            return entry.id
    raise ValueError(f"The manifest has no inpaint model with arch {method!r} and the inpaint role fill.")


def selector_id() -> str:
    """The manifest id of the object selector (Segment Anything)."""
    selectors = _with_role("selector")
    if not selectors:
        raise ValueError("The manifest has no inpaint model with the inpaint role selector.")
    return selectors[0].id


def fill_model_ids() -> list[str]:
    return [entry.id for entry in _with_role("fill")]


def selector_ids() -> list[str]:
    return [entry.id for entry in _with_role("selector")]
