"""How to reproduce a result: the exact ``gradio_client`` call, in a result's notes and in its PNGs.

Every app builds one :class:`Call` per result (API name, every argument, the seed actually used),
ends its notes with :meth:`Call.markdown` and stamps each full-resolution PNG with
:meth:`Call.stamp`: the PNG text chunk ``gradio_client`` holds the call (and ``parameters`` too,
unless the app writes its own, as text-to-image writes A1111's). :func:`read_call` reads it back,
with a literal-only parser (``ast.literal_eval`` per argument): a PNG can never run code.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

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
        value = keyword.value
        try:
            if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "handle_file" and len(value.args) == 1:
                arguments[keyword.arg] = InputFile(str(ast.literal_eval(value.args[0])))
            else:
                arguments[keyword.arg] = ast.literal_eval(value)
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


def settings(call: Call, api_names: tuple[str, ...], names: list[str]) -> list[Any]:
    """The plain values of ``names`` in ``call`` (None where absent), if it was made by one of ``api_names``."""
    if call.api_name.lstrip("/") not in {a.lstrip("/") for a in api_names}:
        made_here = " or ".join(f"`/{a.lstrip('/')}`" for a in api_names)
        raise ValueError(f"This PNG was made by `{call.api_name}`, not by {made_here}: its settings do not apply here.")
    values = [call.arguments.get(name) for name in names]
    return [value if isinstance(value, SETTING_TYPES) else None for value in values]


def with_call(call: Call, outputs: tuple, images: tuple[int, ...] = (0,)) -> tuple:
    """A handler's ``outputs`` with the images at ``images`` stamped and :meth:`Call.markdown` ending the
    notes (the last output)."""
    outputs = list(outputs)
    for i in images:
        outputs[i] = call.stamp(outputs[i])
    outputs[-1] = f"{outputs[-1]}\n\n{call.markdown()}".lstrip()
    return tuple(outputs)
