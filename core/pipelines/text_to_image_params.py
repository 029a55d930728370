"""The A1111-style ``parameters`` text every text-to-image PNG carries, written and read back.

:func:`infotext` writes a prompt, a ``Negative prompt:`` line and ``Key: value`` settings;
:func:`parse_infotext` and :func:`read_parameters` read that text (ours or another A1111-compatible
tool's) back into settings, in linear time and within ``core.limits.max_parameters_chars``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from PIL import Image

MAX_PROMPT_CHARS = 4000


def _is_key_char(c: str) -> bool:
    return c.isalnum() or c in "_ "


def _quoted_end(line: str, start: int) -> int:
    """Index of the quote closing the string that opens at ``line[start]``, or -1 (backslash escapes)."""
    i = start + 1
    while i < len(line):
        if line[i] == "\\":
            i += 2
        elif line[i] == '"':
            return i
        else:
            i += 1
    return -1


def _settings(line: str) -> list[tuple[str, str]]:
    """The ``Key: value`` pairs of an A1111 settings line, in one left-to-right pass (linear time).

    A key is the run of word characters and spaces just before a colon; a value is a JSON string
    followed by a comma or the end, else everything up to the next comma. (A backtracking regex
    for the same grammar takes quadratic time on a long line without colons.)
    """
    pairs, pos = [], 0
    while (colon := line.find(":", pos)) >= 0:
        start = colon
        while start > pos and _is_key_char(line[start - 1]):
            start -= 1
        value = colon + 1
        while value < len(line) and line[value].isspace():
            value += 1
        if start == colon:  # no key before this colon
            pos = colon + 1
            continue
        end = _quoted_end(line, value) if line.startswith('"', value) else -1
        if end >= 0 and (end + 1 == len(line) or line[end + 1] == ","):
            text, pos = line[value:end + 1], end + 2
            try:
                text = json.loads(text)
            except ValueError:
                pass
        else:
            comma = line.find(",", value)
            end = len(line) if comma < 0 else comma
            text, pos = line[value:end].strip(), end + 1
        pairs.append((line[start:colon].strip(), text))
    return pairs


def _quote(value: Any) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if any(c in text for c in ',:"\n') else text


def infotext(used: dict[str, Any]) -> str:
    """A1111-style ``parameters`` text of one image (``used``: a Result's ``details`` with that image's seed):
    prompt, ``Negative prompt:`` line, then ``Key: value`` pairs."""
    params = {
        "Steps": used["steps"], "Sampler": used["sampler"], "CFG scale": f"{used['guidance_scale']:g}",
        "Seed": used["seed"], "Size": f"{used['width']}x{used['height']}", "Model": used["model"],
        "Model revision": used["model_revision"], "Model id": used["model_id"], "Decoder": used["decoder"],
        "Precision": used["precision"], "Version": "GAN Demo Hub",
    }
    lines = [used["prompt"]]
    if used["negative_prompt"]:
        lines.append(f"Negative prompt: {used['negative_prompt']}")
    lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in params.items()))
    return "\n".join(lines)


def parse_infotext(text: str) -> dict[str, Any]:
    """Read A1111-style parameters back: prompt, negative_prompt, steps, guidance_scale, seed, width,
    height, model_id, model_revision, sampler, decoder, precision (keys present only when found)."""
    from core.limits import max_parameters_chars

    text = text or ""
    if len(text) > max_parameters_chars():
        raise ValueError(f"The parameters text in this PNG is {len(text):,} characters; the limit is "
                         f"{max_parameters_chars():,} (two prompts of {MAX_PROMPT_CHARS} characters and the settings).")
    lines = text.strip().split("\n")
    params: dict[str, str] = {}
    if lines and len(pairs := _settings(lines[-1])) >= 3:
        params = dict(pairs)
        lines.pop()
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:"):].strip()
        (negative if in_negative else prompt).append(line)
    out: dict[str, Any] = {"prompt": "\n".join(prompt).strip(), "negative_prompt": "\n".join(negative).strip()}
    converters = {"Steps": ("steps", int), "CFG scale": ("guidance_scale", float), "Seed": ("seed", int),
                  "Sampler": ("sampler", str), "Model id": ("model_id", str), "Model revision": ("model_revision", str),
                  "Model": ("model", str), "Decoder": ("decoder", str), "Precision": ("precision", str)}
    for key, (name, convert) in converters.items():
        if key in params:
            try:
                out[name] = convert(params[key])
            except ValueError:
                pass
    size = re.fullmatch(r"(\d+)x(\d+)", params.get("Size", ""))
    if size:
        out["width"], out["height"] = int(size.group(1)), int(size.group(2))
    return out


def read_parameters(image: str | Path | Image.Image) -> dict[str, Any]:
    """Parameters stored in a PNG made here (or by A1111-compatible tools); ValueError when there are none."""
    if not isinstance(image, Image.Image):
        from core.images import open_image

        try:
            image = open_image(image)  # the upload admission check: size and header only
        except ValueError as e:
            raise ValueError(f"Could not read this file as an image. {e}") from e
    text = image.info.get("parameters")
    if not text:
        raise ValueError("This image carries no generation parameters (only PNGs saved by this app or by "
                         "A1111-compatible tools do; other formats and re-saved copies usually lose them).")
    return parse_infotext(text)
