"""Every hard limit of the hub in one place, each overridable by an environment variable.

Uploads are admitted from their header before any pixel is decoded (``core.images.open_image``),
metadata text is capped before it is parsed, converters and downloads stop at a byte cap, and
long jobs run under a wall-clock :class:`Budget` that ends them with the best result so far.
"""

from __future__ import annotations

import os
import time

MB = 1 << 20


def _env_number(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else float(default)


def max_upload_bytes() -> int:
    """The largest file one upload may be (``GANHUB_MAX_UPLOAD_MB``, default 25 MB)."""
    return int(_env_number("GANHUB_MAX_UPLOAD_MB", 25) * MB)


def max_pixels() -> int:
    """The largest image, in pixels (``GANHUB_MAX_PIXELS``, default 40 MP: a 7300x5500 photo)."""
    return int(_env_number("GANHUB_MAX_PIXELS", 40_000_000))


def max_parameters_chars() -> int:
    """The longest generation-parameters text read from a PNG (``GANHUB_MAX_PARAMETERS_CHARS``).

    Ours is at most two 4000-character prompts plus about 300 characters of settings."""
    return int(_env_number("GANHUB_MAX_PARAMETERS_CHARS", 20_000))


def max_checkpoint_bytes() -> int:
    """The most bytes a converter inflates from one checkpoint (``GANHUB_MAX_CHECKPOINT_MB``, 4 GB)."""
    return int(_env_number("GANHUB_MAX_CHECKPOINT_MB", 4096) * MB)


def max_download_bytes(expected: int | None = None) -> int:
    """The byte cap of one download: the manifest's known size plus 1% (at least 1 MB), or
    ``GANHUB_MAX_DOWNLOAD_MB`` (default 4 GB) when the size is unknown."""
    if expected:
        return int(expected) + max(MB, int(expected) // 100)
    return int(_env_number("GANHUB_MAX_DOWNLOAD_MB", 4096) * MB)


def job_seconds() -> float:
    """The wall-clock budget of one request (``GANHUB_JOB_SECONDS``, default 120 s)."""
    return _env_number("GANHUB_JOB_SECONDS", 120)


class Budget:
    """A wall-clock budget for one job: loops ask :meth:`expired` and, when it is, stop and return
    their best result so far with :meth:`note`. ``seconds`` None means the default
    (:func:`job_seconds`); 0 or less means no limit."""

    def __init__(self, seconds: float | None = None):
        self.seconds = job_seconds() if seconds is None else float(seconds)
        self.started = time.monotonic()
        self.ran_out = False

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def expired(self) -> bool:
        if self.seconds > 0 and self.elapsed() >= self.seconds:
            self.ran_out = True
        return self.ran_out

    def note(self, done: str) -> str:
        """The message for a job stopped by this budget; ``done`` says how far it got."""
        return (f"This server gives one request at most {self.seconds:g} s (GANHUB_JOB_SECONDS); the job "
                f"was stopped there after {done}, and the best result so far is shown.")
