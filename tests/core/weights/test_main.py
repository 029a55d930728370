"""The command line, ``python -m core.weights``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from core import weights


def test_cli_list_shows_every_entry():
    out = subprocess.run([sys.executable, "-m", "core.weights", "list"], capture_output=True, text=True,
                         cwd=weights.REPO_ROOT, env={**os.environ, "GANHUB_MANIFEST": str(weights.MANIFEST_PATH)})
    assert out.returncode == 0, out.stderr
    ids = json.loads(weights.MANIFEST_PATH.read_text())["models"]
    for model_id in ids:
        assert model_id in out.stdout
    assert "available" in out.stdout or "missing" in out.stdout
