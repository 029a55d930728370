"""The two errors the weights layer raises besides ``ValueError``."""

from __future__ import annotations

from core.weights.paths import display_paths


class WeightsUnavailableError(RuntimeError):
    """No source of a model's weights could be used; the message says what was tried and what to do."""

    def __init__(self, model_id: str, message: str):
        super().__init__(display_paths(message))  # users see $GANHUB_CACHE/..., not the server's layout
        self.model_id = model_id


class ChecksumError(ValueError):
    """A file's sha256 (or md5) differs from the manifest's."""


def sources_tried(failures: list[str]) -> str:
    """The numbered list of failed sources that a :class:`WeightsUnavailableError` shows."""
    return "\n".join(f"  {i + 1}. {f}" for i, f in enumerate(failures)) or "  (the manifest lists no source)"
