"""Hugging Face Spaces: build a ready-to-push Space folder for one app, and deploy it.

    python -m deploy.spaces build APP OUTDIR
    python -m deploy.spaces deploy APP --repo USER/NAME [--private] [--hardware cpu-upgrade]

The folder holds ``app.py`` at its root (a three-line launcher of ``apps/<APP>/app.py``), ``core/``,
the app's own folder (examples, shipped weights), ``weights_manifest.json`` reduced to the app's
models, a ``requirements.txt`` without gradio (the Space's ``sdk_version`` pins it), and a README
with the front matter Spaces reads. ``deploy`` needs ``HF_TOKEN`` in the environment.

What only a Space needs to know about an app lives beside it, in ``apps/<APP>/space.json``: its
``emoji`` and the ``suggested_hardware`` a duplicator should pick (the heavy apps ask for ZeroGPU,
which their handlers support through ``core.ui.gpu``). Its title and description are the app
module's ``TITLE`` and ``DESCRIPTION``, its models the manifest's ``apps`` lists.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from core.weights import REPO_ROOT, load_manifest, models_for_app

SPACE_KEYS = {"emoji", "suggested_hardware"}
LAUNCHER = '''"""Hugging Face Space entry point: the {name} app of the GAN Demo Hub."""

try:  # ZeroGPU: `spaces` must be imported before torch touches CUDA
    import spaces  # noqa: F401
except ImportError:
    pass

from apps.{name}.app import demo
from core import ui

if __name__ == "__main__":
    ui.launch(demo, [])
'''


def _check_name(name: str) -> None:
    from apps import APP_NAMES

    if name not in APP_NAMES:
        raise ValueError(f"Unknown app {name!r}; apps: {', '.join(APP_NAMES)}.")


def _app_module(name: str):
    _check_name(name)
    return importlib.import_module(f"apps.{name}.app")


def space_record(name: str) -> dict:
    """The app's ``space.json``: exactly the keys in ``SPACE_KEYS``, each a non-empty string."""
    _check_name(name)
    path = REPO_ROOT / "apps" / name / "space.json"
    record = json.loads(path.read_text())
    if not isinstance(record, dict) or set(record) != SPACE_KEYS or not all(
            isinstance(v, str) and v for v in record.values()):
        raise ValueError(f"{path} must give exactly {', '.join(sorted(SPACE_KEYS))}, each a non-empty string.")
    return record


def app_model_ids(name: str) -> list[str]:
    """The manifest entries an app uses (the manifest's ``apps`` lists are the only record), sorted."""
    _check_name(name)
    return sorted(models_for_app(name))


def preload_line(src) -> str | None:
    """A ``preload_from_hub`` entry in the Spaces configuration format: the repo id, then the
    comma-separated files, then the commit. ``None`` for a snapshot given by glob patterns, which
    that format cannot express (such a model is downloaded on first use instead)."""
    spec = src.spec
    files = [spec["filename"]] if "filename" in spec else list(spec.get("allow_patterns", []))
    if not files or any(ch in f for f in files for ch in "*?["):
        return None
    return f"{spec['repo_id']} {','.join(files)} {spec['revision']}"


LICENCE_FILE = "LICENSE.md"


def space_licence(model_ids: list[str]) -> dict:
    """The front matter's licence keys, taken from the models the Space serves.

    One Hub licence id (the manifest's ``license_id``) shared by every model, all of them free for
    commercial use, is the Space's licence. Anything else (several licences, non-commercial or
    unlicensed weights) is ``other``, pointing at a file that lists each model's own terms."""
    entries = load_manifest()
    ids = {entries[m].info.get("license_id", "other") for m in model_ids}
    commercial = all(entries[m].info.get("commercial_use") is True for m in model_ids)
    if len(ids) == 1 and "other" not in ids and commercial:
        return {"license": ids.pop()}
    return {"license": "other", "license_name": "per-model-licences", "license_link": LICENCE_FILE}


def _licence_file(name: str, model_ids: list[str]) -> str:
    entries = load_manifest()
    lines = [f"# Licences of the models in the {name} Space", "",
             "Each model keeps its own terms; the Space as a whole is bound by all of them.", ""]
    for model_id in model_ids:
        entry = entries[model_id]
        use = {True: "allowed", False: "not allowed", "limited": "limited"}.get(entry.info.get("commercial_use"), "unknown")
        lines += [f"## {entry.title} (`{model_id}`)", "", f"- Licence: {entry.license}", f"- Commercial use: {use}", ""]
    return "\n".join(lines)


def front_matter(name: str) -> dict:
    import gradio

    module = _app_module(name)
    space = space_record(name)
    entries = load_manifest()
    ids = app_model_ids(name)
    models, preload = [], []
    for model_id in ids:
        for src in entries[model_id].sources:
            if src.kind == "hf":
                models.append(src.spec["repo_id"])
                line = preload_line(src)
                if line:
                    preload.append(line)
                break  # the first Hub source is the one the resolver tries first
    licences = "; ".join(f"{entries[i].title}: {entries[i].license}" for i in ids)
    return {
        "title": module.TITLE[:60],
        "emoji": space["emoji"],
        "colorFrom": "indigo",
        "colorTo": "pink",
        "sdk": "gradio",
        "sdk_version": gradio.__version__,
        "python_version": "3.11",
        "app_file": "app.py",
        "pinned": False,
        **space_licence(ids),
        "short_description": module.DESCRIPTION[:60],
        "models": sorted(set(models)),
        "preload_from_hub": preload,
        "suggested_hardware": space["suggested_hardware"],
        "startup_duration_timeout": "1h",
        "tags": ["gan", "gan-demo-hub", name],
        "model_licences": licences,
    }


def _readme(name: str, meta: dict) -> str:
    import yaml

    module = _app_module(name)
    body = {k: v for k, v in meta.items() if k != "model_licences"}
    lines = [
        "---", yaml.safe_dump(body, sort_keys=False, allow_unicode=True).strip(), "---", "",
        f"# {module.TITLE}", "", module.DESCRIPTION, "",
        "Part of the GAN Demo Hub. Model licences: " + meta["model_licences"], "",
        "Call it from a script:", "", "```python", "from gradio_client import Client, handle_file",
        "client = Client(\"USER/SPACE\")", "print(client.view_api(print_info=False, return_format='dict'))", "```", "",
    ]
    app_readme = REPO_ROOT / "apps" / name / "README.md"
    if app_readme.is_file():
        lines += [app_readme.read_text()]
    return "\n".join(lines)


def _requirements() -> str:
    kept = []
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        package = line.split("==")[0].split("[")[0].strip().lower()  # gradio[mcp]==X is gradio
        if package == "gradio":
            continue  # gradio comes from the front matter's sdk_version
        kept.append(line)
    return "\n".join(kept) + "\n"


def build(name: str, outdir: str | Path) -> Path:
    """Write a self-contained Space folder for app ``name`` into ``outdir`` (created, must be empty)."""
    _app_module(name)  # unknown names and a broken space.json fail here, before anything is written
    space_record(name)
    outdir = Path(outdir)
    if outdir.exists() and any(outdir.iterdir()):
        raise ValueError(f"{outdir} is not empty.")
    outdir.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".gradio")
    shutil.copytree(REPO_ROOT / "core", outdir / "core", ignore=ignore)
    (outdir / "apps").mkdir()
    shutil.copy2(REPO_ROOT / "apps" / "__init__.py", outdir / "apps" / "__init__.py")
    shutil.copytree(REPO_ROOT / "apps" / name, outdir / "apps" / name, ignore=ignore)
    manifest = json.loads((REPO_ROOT / "weights_manifest.json").read_text())
    ids = set(app_model_ids(name))
    manifest["models"] = {k: v for k, v in manifest["models"].items() if k in ids}
    (outdir / "weights_manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    (outdir / "requirements.txt").write_text(_requirements())
    (outdir / "app.py").write_text(LAUNCHER.format(name=name))
    meta = front_matter(name)
    (outdir / "README.md").write_text(_readme(name, meta))
    if meta["license"] == "other":
        (outdir / LICENCE_FILE).write_text(_licence_file(name, sorted(ids)))
    (outdir / ".gitignore").write_text("__pycache__/\n.gradio/\n")
    return outdir


def deploy(name: str, repo_id: str, private: bool = False, hardware: str | None = None) -> str:
    """Create or update the Space ``repo_id`` with app ``name``; returns its URL."""
    from huggingface_hub import HfApi

    token = os.environ.get("HF_TOKEN")
    if not token:
        raise ValueError("Set HF_TOKEN (a write token from https://huggingface.co/settings/tokens) to deploy.")
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True,
                    space_hardware=hardware)
    with tempfile.TemporaryDirectory() as tmp:
        folder = build(name, Path(tmp) / "space")
        api.upload_folder(repo_id=repo_id, repo_type="space", folder_path=str(folder),
                          commit_message=f"Deploy the {name} app of the GAN Demo Hub",
                          delete_patterns=["*.py", "**/*.py", "*.json", "apps/**"])
    return f"https://huggingface.co/spaces/{repo_id}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.spaces", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="write a Space folder for one app")
    p_build.add_argument("app")
    p_build.add_argument("outdir")
    p_deploy = sub.add_parser("deploy", help="create/update a Space (needs HF_TOKEN)")
    p_deploy.add_argument("app")
    p_deploy.add_argument("--repo", required=True, help="USER/NAME of the Space")
    p_deploy.add_argument("--private", action="store_true")
    p_deploy.add_argument("--hardware", help="e.g. cpu-upgrade, t4-small, zero-a10g")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            print(build(args.app, args.outdir))
        else:
            print(deploy(args.app, args.repo, args.private, args.hardware))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
