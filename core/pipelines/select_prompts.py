"""Selection prompts: include/exclude points and a box on the photo, written as text or JSON.

Prompts are text, so scripts and agents can say "remove the thing at (x, y)": items separated
by newlines or ``;``, coordinates in pixels of the photo (x right, y down)::

    +120,80            an include point (a bare ``120,80`` too)
    -200,150           an exclude point
    box 10,20,300,400  a box: left, top, right, bottom

or as JSON: ``{"include": [[120, 80]], "exclude": [[200, 150]], "box": [10, 20, 300, 400]}``.
A click in the app adds one item (:func:`add_click`); a box takes two clicks.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

MAX_POINTS = 64
FORMAT_HELP = "write +x,y (include), -x,y (exclude) or box left,top,right,bottom, separated by ; or new lines"
_NUMBER = r"\s*(-?\d+(?:\.\d+)?)\s*"
_POINT = re.compile(rf"^([+-]?){_NUMBER},{_NUMBER}$")
_CORNER = re.compile(rf"corner{_NUMBER},{_NUMBER}$", re.IGNORECASE)
_BOX = re.compile(rf"^box\s*[:=]?{_NUMBER},{_NUMBER},{_NUMBER},{_NUMBER}$", re.IGNORECASE)

Point = tuple[float, float]


@dataclass(frozen=True)
class Prompts:
    include: tuple[Point, ...] = ()
    exclude: tuple[Point, ...] = ()
    box: tuple[float, float, float, float] | None = None

    def to_text(self) -> str:
        items = [f"+{x:g},{y:g}" for x, y in self.include] + [f"-{x:g},{y:g}" for x, y in self.exclude]
        if self.box is not None:
            items.append("box " + ",".join(f"{v:g}" for v in self.box))
        return "; ".join(items)


def _from_json(data: Any) -> Prompts:
    if not isinstance(data, dict) or set(data) - {"include", "exclude", "box", "points", "labels"}:
        raise ValueError('Prompts as JSON are an object with "include", "exclude" (lists of [x, y]) and "box" '
                         '([left, top, right, bottom]).')

    def points(value, what):
        if not isinstance(value, list) or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
            raise ValueError(f'"{what}" must be a list of [x, y] pairs.')
        return tuple((float(x), float(y)) for x, y in value)

    include, exclude = points(data.get("include", []), "include"), points(data.get("exclude", []), "exclude")
    if "points" in data:  # SAM's own convention: points with labels 1 (include) / 0 (exclude)
        labels = data.get("labels", [1] * len(data["points"]))
        pts = points(data["points"], "points")
        if len(labels) != len(pts) or any(label not in (0, 1) for label in labels):
            raise ValueError('"labels" must give 1 (include) or 0 (exclude) for each of the "points".')
        include += tuple(p for p, label in zip(pts, labels) if label == 1)
        exclude += tuple(p for p, label in zip(pts, labels) if label == 0)
    box = data.get("box")
    if box is not None and (not isinstance(box, (list, tuple)) or len(box) != 4):
        raise ValueError('"box" must be [left, top, right, bottom].')
    return Prompts(include, exclude, tuple(float(v) for v in box) if box is not None else None)


def parse_prompts(text: str | dict | None) -> Prompts:
    """Read prompts from the text or JSON format above; ValueError says what could not be read."""
    if isinstance(text, dict):
        return _from_json(text)
    text = (text or "").strip()
    if text.startswith("{"):
        try:
            return _from_json(json.loads(text))
        except json.JSONDecodeError as e:
            raise ValueError(f"The prompts look like JSON but cannot be read: {e.msg} (at character {e.pos}).") from None
    include, exclude, box = [], [], None
    for number, item in enumerate((i.strip() for i in re.split(r"[;\n]", text)), start=1):
        if not item:
            continue
        if match := _BOX.match(item):
            if box is not None:
                raise ValueError("Give at most one box.")
            box = tuple(float(v) for v in match.groups())
        elif _CORNER.match(item):
            raise ValueError(f"The box has one corner so far ({item}): click its opposite corner, or delete it.")
        elif match := _POINT.match(item):
            (exclude if match.group(1) == "-" else include).append((float(match.group(2)), float(match.group(3))))
        else:
            raise ValueError(f"Cannot read {item[:40]!r} (item {number}): {FORMAT_HELP}.")
    return Prompts(tuple(include), tuple(exclude), box)


def validate(prompts: Prompts, size: tuple[int, int]) -> Prompts:
    """Refuse empty prompts, points or boxes outside the photo (``size`` = (W, H)), degenerate boxes."""
    width, height = size
    if not prompts.include and prompts.box is None:
        if prompts.exclude:
            raise ValueError("Exclude points alone select nothing: add an include point (+x,y) or a box.")
        raise ValueError("Nothing is selected: click on the object (include points) or give a box, e.g. "
                         "`+120,80` or `box 10,20,300,400`.")
    if len(prompts.include) + len(prompts.exclude) > MAX_POINTS:
        raise ValueError(f"At most {MAX_POINTS} points, got {len(prompts.include) + len(prompts.exclude)}.")
    for x, y in prompts.include + prompts.exclude:
        if not (0 <= x < width and 0 <= y < height):
            raise ValueError(f"The point ({x:g}, {y:g}) is outside the {width}x{height} photo "
                             f"(x must be in 0..{width - 1}, y in 0..{height - 1}).")
    if prompts.box is not None:
        left, top, right, bottom = prompts.box
        if not (0 <= left < right <= width and 0 <= top < bottom <= height):
            raise ValueError(f"The box ({left:g}, {top:g}, {right:g}, {bottom:g}) must lie inside the {width}x{height} "
                             f"photo with left < right <= {width} and top < bottom <= {height}.")
    return prompts


def add_click(text: str | None, x: float, y: float, mode: str) -> str:
    """The prompt text after a click at (x, y): ``include``, ``exclude``, or ``box`` (two clicks = two corners)."""
    text = text or ""
    pending = _CORNER.search(text)
    if pending is not None:  # a box's first corner: this click completes the box, whatever the mode
        x0, y0 = float(pending.group(1)), float(pending.group(2))
        prompts = parse_prompts(text[:pending.start()].rstrip("; "))
        box = (min(x0, x), min(y0, y), max(x0, x) + 1, max(y0, y) + 1)
        return Prompts(prompts.include, prompts.exclude, box).to_text()
    prompts = parse_prompts(text)
    if mode == "include":
        return Prompts(prompts.include + ((x, y),), prompts.exclude, prompts.box).to_text()
    if mode == "exclude":
        return Prompts(prompts.include, prompts.exclude + ((x, y),), prompts.box).to_text()
    if mode == "box":  # the first corner waits in the text until the second click
        return (prompts.to_text() + "; " if prompts.to_text() else "") + f"corner {x:g},{y:g}"
    raise ValueError(f"Unknown click mode {mode!r}; choose include, exclude or box.")
