"""The Space folder builder, checked offline: front matter, contents, and the app starting from the folder alone."""

import os
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml

from apps import APP_NAMES
from core import weights
from deploy import spaces
from tests.support.live import free_port


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    return spaces.build("season", tmp_path_factory.mktemp("space") / "season")


def read_front_matter(readme: str) -> dict:
    assert readme.startswith("---\n")
    return yaml.safe_load(readme.split("---\n")[1])


def test_front_matter_is_what_spaces_reads(space):
    import gradio

    meta = read_front_matter((space / "README.md").read_text())
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == gradio.__version__
    assert meta["app_file"] == "app.py" and (space / meta["app_file"]).is_file()
    assert meta["python_version"] == "3.11"
    assert meta["suggested_hardware"] == "cpu-basic"
    assert "hardware" not in meta  # not a Spaces key


def test_licence_comes_from_the_models(space):
    # The summer <-> winter weights carry no licence and are non-commercial: the Space cannot say MIT.
    meta = read_front_matter((space / "README.md").read_text())
    assert meta["license"] == "other" and meta["license_name"] == "per-model-licences"
    listing = (space / meta["license_link"]).read_text()
    assert "`cyclegan.vintage`" in listing and "`cyclegan.summer2winter`" in listing
    assert "Commercial use: not allowed" in listing and "Commercial use: allowed" in listing
    assert spaces.space_licence(["diffusers.taesd"]) == {"license": "mit"}
    assert spaces.space_licence(["genegan.eyeglasses64"])["license"] == "other"  # MIT code, non-commercial data


@pytest.fixture(scope="module")
def pulse_space(tmp_path_factory):
    return spaces.build("pulse", tmp_path_factory.mktemp("space") / "pulse")


def test_pulse_space_wraps_its_handler_and_preloads_pinned_files(pulse_space):
    from tests.apps.test_zero_gpu import probe

    assert probe(pulse_space, "pulse")["apps"]["pulse"]["upsample"] is True
    meta = read_front_matter((pulse_space / "README.md").read_text())
    assert meta["suggested_hardware"] == "zero-a10g" and meta["license"] == "other"
    # The Spaces configuration format: repo id, comma-separated files, commit.
    assert meta["preload_from_hub"] == [
        "akhaliq/OneshotCLIP-stylegan2-ffhq stylegan2-ffhq-config-f.pt 024390a9508cb2d124dfaa8ec1caee3ad1a9da59"]
    requirements = (pulse_space / "requirements.txt").read_text().lower()
    for tool in ("pytest", "playwright", "scikit-image", "psutil", "spaces"):
        assert tool not in requirements


def test_preload_lines_list_files_or_nothing():
    entries = weights.load_manifest()
    assert spaces.preload_line(entries["diffusers.taesd"].sources[0]) == (
        "madebyollin/taesd config.json,diffusion_pytorch_model.safetensors 614f76814bbe30edbe2e627ace1c2234c81a2c0e")
    assert spaces.preload_line(entries["diffusers.sd_turbo"].sources[0]) is None  # glob patterns: fetched on first use


def test_folder_holds_only_what_the_app_needs(space):
    import json

    manifest = json.loads((space / "weights_manifest.json").read_text())
    assert set(manifest["models"]) == {"cyclegan.summer2winter", "cyclegan.winter2summer", "cyclegan.vintage"}
    assert (space / "core" / "weights" / "__init__.py").is_file() and (space / "apps" / "season" / "app.py").is_file()
    assert not (space / "apps" / "pulse").exists() and not (space / "deploy").exists()
    requirements = (space / "requirements.txt").read_text()
    assert "torch==" in requirements and "gradio==" not in requirements and "pytest" not in requirements
    assert not list(space.rglob("__pycache__"))


@pytest.mark.parametrize("name", APP_NAMES)
def test_every_app_has_its_space_record(name):
    record = spaces.space_record(name)
    assert record["suggested_hardware"] in {"cpu-basic", "cpu-upgrade", "zero-a10g"}
    assert record["emoji"] and not record["emoji"].isascii()


def test_space_record_with_a_wrong_key_is_refused(monkeypatch, tmp_path):
    (tmp_path / "apps" / "season").mkdir(parents=True)
    (tmp_path / "apps" / "season" / "space.json").write_text('{"emoji": "x", "hardware": "cpu-basic"}')
    monkeypatch.setattr(spaces, "REPO_ROOT", tmp_path)
    with pytest.raises(ValueError, match="must give exactly emoji, suggested_hardware"):
        spaces.space_record("season")


def test_refuses_unknown_app_and_non_empty_folder(space, tmp_path):
    with pytest.raises(ValueError, match="Unknown app"):
        spaces.build("nope", tmp_path / "x")
    with pytest.raises(ValueError, match="not empty"):
        spaces.build("season", space)


def test_app_starts_from_the_folder_alone(space):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1", GRADIO_ANALYTICS_ENABLED="False")
    process = subprocess.Popen([sys.executable, "app.py"], cwd=space, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 90
        while True:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
                break
            except OSError:
                if process.poll() is not None or time.time() > deadline:
                    pytest.fail("the Space app did not start:\n" + process.stdout.read().decode(errors="replace"))
                time.sleep(0.5)
        assert "gradio" in page.lower()
        config = urllib.request.urlopen(f"http://127.0.0.1:{port}/config").read().decode()
        assert "Season" in config
    finally:
        process.terminate()
        process.wait(10)


def test_deploy_needs_a_token(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(ValueError, match="HF_TOKEN"):
        spaces.deploy("season", "someone/season")
