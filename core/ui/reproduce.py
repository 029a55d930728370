"""How to reproduce a result: the exact ``gradio_client`` call, in a result's notes and in its PNGs.

A handler ends with one call, :func:`stamp_result` (API name, every argument, the seed actually
used): its notes then end with :meth:`Call.markdown` and each full-resolution PNG carries the call
(:meth:`Call.stamp`) in its text chunk ``gradio_client`` (and ``parameters`` too, unless the app
writes its own, as text-to-image writes A1111's). :func:`read_call` reads it back, with a
literal-only parser (``ast.literal_eval`` per argument): a PNG can never run code, and
:func:`reuse_settings` puts what it read back into the page's settings.
"""

from __future__ import annotations

import ast
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from core.ui.errors import user_errors

PNG_KEY = "gradio_client"
MAX_CALL_CHARS = 64_000  # a call with a long prompt is a few KB; anything larger is refused unparsed
SETTING_TYPES = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class InputFile:
    """An image argument of the call: the user's own file, written as ``handle_file(name)``."""

    name: str

    def __repr__(self) -> str:
        return f"handle_file({self.name!r})"


@dataclass(frozen=True)
class Call:
    """``client.predict(**arguments, api_name=api_name)``: arguments in the endpoint's order."""

    api_name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def code(self) -> str:
        args = "".join(f"{name}={value!r}, " for name, value in self.arguments.items())
        return f"client.predict({args}api_name={self.api_name!r})"

    def script(self) -> str:
        """A script that reproduces this result against this app."""
        return ("from gradio_client import Client, handle_file\n"
                "client = Client(\"http://127.0.0.1:7860/\")  # this app's URL\n" + self.code())

    def markdown(self) -> str:
        """The notes' last lines: :meth:`script`, explained."""
        return ("**Reproduce** with `gradio_client` (every argument as used here, seeds included; put your own "
                f"files in place of the file names):\n```python\n{self.script()}\n```")

    def stamp(self, image: Image.Image, parameters: bool = True) -> Image.Image:
        """Store the call in ``image``'s PNG text (``gradio_client``; also ``parameters`` if asked)."""
        image.info[PNG_KEY] = self.code()
        if parameters:
            image.info["parameters"] = self.code()
        return image


def files(*names: str) -> dict[str, InputFile]:
    """Placeholder image arguments named after the endpoint's parameters: ``image=handle_file('image.png')``."""
    return {name: InputFile(f"{name}.png") for name in names}


def _literal(node: ast.expr) -> Any:
    """The value of a literal that may hold ``handle_file('name')`` anywhere inside (an editor's parts)."""
    if isinstance(node, ast.Call):
        if getattr(node.func, "id", None) != "handle_file" or len(node.args) != 1 or node.keywords:
            raise ValueError("only handle_file('name') may be called")
        name = ast.literal_eval(node.args[0])
        if not isinstance(name, str):
            raise ValueError("handle_file takes a file name")
        return InputFile(name)
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {ast.literal_eval(key): _literal(value) for key, value in zip(node.keys, node.values)}
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_literal(item) for item in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    return ast.literal_eval(node)


def parse_call(text: str) -> Call:
    """A :class:`Call` from ``client.predict(name=literal, ..., api_name='/x')``; ValueError otherwise."""
    if len(text) > MAX_CALL_CHARS:
        raise ValueError(f"The stored call is too long ({len(text):,} characters; at most {MAX_CALL_CHARS:,}).")
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise ValueError("The stored call is not a gradio_client call.") from e
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "predict"
            and not node.args and all(kw.arg for kw in node.keywords)):
        raise ValueError("The stored call is not a gradio_client call with keyword arguments.")
    arguments = {}
    for keyword in node.keywords:
        try:
            arguments[keyword.arg] = _literal(keyword.value)
        except (ValueError, TypeError, SyntaxError, RecursionError) as e:
            raise ValueError(f"The stored value of {keyword.arg!r} is not a plain value.") from e
    api_name = arguments.pop("api_name", None)
    if not isinstance(api_name, str):
        raise ValueError("The stored call names no api_name.")
    return Call(api_name, arguments)


def read_call(image: str | Path | Image.Image) -> Call:
    """The call stored in a PNG made by these apps; ValueError (with what to do) when there is none."""
    if not isinstance(image, Image.Image):
        try:
            image = Image.open(image)
        except (OSError, ValueError) as e:
            raise ValueError(f"Could not read this file as an image ({e}).") from e
    text = image.info.get(PNG_KEY)
    if not isinstance(text, str) or not text:
        raise ValueError("This image carries no settings: only the PNGs these apps return do (a re-saved copy or "
                         "another format usually loses them).")
    return parse_call(text)


def stored_settings(call: Call, api_names: tuple[str, ...], names: list[str]) -> list[Any]:
    """The plain values of ``names`` in ``call`` (None where absent), if it was made by one of ``api_names``."""
    if call.api_name.lstrip("/") not in {a.lstrip("/") for a in api_names}:
        made_here = " or ".join(f"`/{a.lstrip('/')}`" for a in api_names)
        raise ValueError(f"This PNG was made by `{call.api_name}`, not by {made_here}: its settings do not apply here.")
    values = [call.arguments.get(name) for name in names]
    return [value if isinstance(value, SETTING_TYPES) else None for value in values]


EDITOR_PARTS = ("background", "layers", "composite")


def _argument(name: str, value: Any) -> Any:
    """``value`` as it is written in the call: an image or a file becomes ``handle_file(...)``, an
    editor value one file per part, numpy scalars and arrays plain numbers and lists."""
    if isinstance(value, Path):
        return InputFile(f"{name}{value.suffix or '.png'}")
    if isinstance(value, Image.Image) or (isinstance(value, np.ndarray) and value.ndim in (2, 3)):
        return InputFile(f"{name}.png")
    if isinstance(value, dict) and set(value) >= set(EDITOR_PARTS):  # gr.ImageEditor / gr.Sketchpad
        return {"background": None if value["background"] is None else InputFile(f"{name}_background.png"),
                "layers": [InputFile(f"{name}_layer_{i + 1}.png") for i in range(len(value["layers"] or []))],
                "composite": None if value["composite"] is None else InputFile(f"{name}_composite.png")}
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return type(value)(_argument(f"{name}_{i + 1}", v) for i, v in enumerate(value))
    if isinstance(value, dict):
        return {k: _argument(f"{name}_{k}", v) for k, v in value.items()}
    if isinstance(value, (*SETTING_TYPES, InputFile)):
        return value
    raise TypeError(f"{name}={value!r} cannot be written in a gradio_client call (pass its plain value).")


def call_of(api_name: str, **arguments: Any) -> Call:
    """The :class:`Call` of ``api_name`` with ``arguments`` as the handler received them (see :func:`stamp_result`)."""
    return Call(api_name if api_name.startswith("/") else "/" + api_name,
                {name: _argument(name, value) for name, value in arguments.items()})


def _stamp_output(call: Call, output: Any) -> Any:
    """``output`` with every PIL image in it stamped: an image, or a gallery of images / (image, caption)."""
    if isinstance(output, Image.Image):
        return call.stamp(output)
    if isinstance(output, (list, tuple)):
        return type(output)(_stamp_output(call, item) for item in output)
    return output


def with_call(call: Call, outputs: tuple, png_at: tuple[int, ...] = (0,), notes_at: int | None = -1) -> tuple:
    """A handler's ``outputs`` with the images at ``png_at`` stamped (galleries too) and
    :meth:`Call.markdown` ending the notes (the output at ``notes_at``; None: the result has no notes)."""
    outputs = list(outputs)
    for i in png_at:
        outputs[i] = _stamp_output(call, outputs[i])
    if notes_at is not None:
        outputs[notes_at] = f"{outputs[notes_at] or ''}\n\n{call.markdown()}".lstrip()
    return tuple(outputs)


def stamp_result(api_name: str, outputs: tuple, /, *, png_at: tuple[int, ...] = (0,), notes_at: int | None = -1,
                 **arguments: Any) -> tuple:
    """A handler's ``outputs``, made reproducible in one call: the notes end with the ``gradio_client``
    call and every PNG carries it. Pass every argument of the endpoint, in its order, with the values
    actually used (the resolved seed, not -1)::

        return ui.stamp_result("/extend_canvas", (result, notes), image=image, left=left, top=top,
                               right=right, bottom=bottom, method=method)
        return ui.stamp_result("/sample", (gallery, notes), generator=generator, seed=seed_used, ...)

    Images (PIL, numpy) are written as ``handle_file('<argument>.png')`` and ``Path`` values as
    ``handle_file('<argument><suffix>')`` (pass ``Path(file_a)`` for a file received as a path
    string); an editor's value as one file per part, numpy numbers as plain numbers, strings as they
    are. ``png_at``: the positions of the outputs to stamp (an image, or a gallery list); ``notes_at``:
    the position of the Markdown notes, or None. A value that a call cannot hold (an object) is a
    TypeError: pass its plain setting."""
    return with_call(call_of(api_name, **arguments), outputs, png_at, notes_at)


def reproducible(notes_at: int | None = -1, paths: tuple[str, ...] = ()) -> Callable:
    """Handler decorator: :func:`stamp_result` with the handler's own name and arguments as received
    (every PIL image it returns is stamped). ``paths``: arguments that are uploaded files received as
    path strings, written as ``handle_file('<argument><suffix>')``."""
    def decorate(handler: Callable) -> Callable:
        signature = inspect.signature(handler)

        @functools.wraps(handler)
        def run(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = {k: Path(v) if k in paths and v else v for k, v in bound.arguments.items()}
            outputs = tuple(handler(*args, **kwargs))
            return stamp_result(handler.__name__, outputs, png_at=tuple(range(len(outputs))), notes_at=notes_at,
                                **arguments)
        return run
    return decorate


def reuse_settings(api_name: str, made_by: tuple[str, ...], settings: dict[str, gr.components.Component]) -> gr.File:
    """A "drop a PNG made here" box: the settings stored in the PNG go back into the ``settings``
    components (parameter name -> component) for a PNG made by one of the ``made_by`` endpoints.
    Registers ``api_name`` (an API endpoint and MCP tool) that returns those settings."""
    names = list(settings)

    def read(png):
        if not png:
            raise ValueError("Drop a PNG made by this app to reuse its settings.")
        values = stored_settings(read_call(png), made_by, names)
        return tuple(gr.update() if value is None else value for value in values)

    read.__name__ = api_name  # the MCP tool's name
    read.__doc__ = (f"Read the settings stored in a PNG made by {' or '.join('/' + a for a in made_by)}.\n\n"
                    f"Args:\n    png: a PNG returned by this app (an http(s) URL or a base64 data URL).\n\n"
                    f"Returns:\n    the settings in this order: {', '.join(names)}")
    box = gr.File(label="Reuse settings: drop a PNG made here", file_types=[".png"], type="filepath", height=120)
    box.upload(user_errors(read), box, list(settings.values()), api_name=api_name)
    return box
