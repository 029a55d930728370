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


DEFAULT_MAX_PIXELS = 40_000_000  # a 7300x5500 photo


def max_pixels() -> int:
    """The largest image, in pixels (``GANHUB_MAX_PIXELS``, default :data:`DEFAULT_MAX_PIXELS`)."""
    return int(_env_number("GANHUB_MAX_PIXELS", DEFAULT_MAX_PIXELS))


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


def max_search_work(device_type: str) -> int:
    """The most PULSE steps x samples one request may ask for (``GANHUB_MAX_STEP_SAMPLES``;
    default 2000 on a CPU, e.g. 250 steps x 8 samples, and 4000 on an accelerator)."""
    return int(_env_number("GANHUB_MAX_STEP_SAMPLES", 2000 if device_type == "cpu" else 4000))


class Budget:
    """The wall-clock budget of one job (:func:`job_seconds` unless ``seconds`` is given; 0 or
    less: no limit). Long loops ask :meth:`expired` between steps; when it is, they stop, return
    their best result so far and call :meth:`stopped`, whose note the app shows."""

    def __init__(self, seconds: float | None = None):
        self.seconds = job_seconds() if seconds is None else float(seconds)
        self.started = time.monotonic()
        self.notes: list[str] = []

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def expired(self) -> bool:
        return self.seconds > 0 and self.elapsed() >= self.seconds

    def stopped(self, done: str) -> str:
        """Record (and return) the note of a job this budget stopped; ``done`` says how far it got."""
        note = (f"This server gives one request at most {self.seconds:g} s (GANHUB_JOB_SECONDS): the job was "
                f"stopped after {done}, and the best result so far is shown.")
        self.notes.append(note)
        return note


class JobClock:
    """Seconds per unit of work (a step, a megapixel) per kind of job, measured on this server
    (an exponential average seeded with a prior), to tell users how long a job will take."""

    def __init__(self):
        self._rates: dict[str, float] = {}
        self.on_record = None  # called with each record (the model worker reports its records to the server)

    def record(self, kind: str, units: float, seconds: float) -> None:
        if self.on_record is not None:
            self.on_record(kind, units, seconds)
        if units > 0:
            rate = seconds / units
            self._rates[kind] = rate if kind not in self._rates else 0.7 * self._rates[kind] + 0.3 * rate

    def estimate(self, kind: str, units: float, prior: float) -> float:
        """Expected seconds of ``units`` of ``kind`` (``prior`` seconds per unit until measured)."""
        return units * self._rates.get(kind, prior)


JOB_CLOCK = JobClock()


def expected_time_text(seconds: float) -> str:
    """'about 40 s' (or minutes), and what the per-request budget does to it."""
    text = f"about {seconds:.0f} s" if seconds < 90 else f"about {seconds / 60:.0f} min"
    budget = job_seconds()
    if budget > 0 and seconds > budget:
        text += f"; this server stops a request after {budget:g} s and shows the best result so far"
    return text
