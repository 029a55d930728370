"""The manifest schema check."""

from __future__ import annotations

import json

from core import weights


def test_project_manifest_is_valid():
    assert weights.validate_manifest() == []


def test_validator_refuses_an_unknown_cuda_dtype(tmp_path):
    data = json.loads(weights.MANIFEST_PATH.read_text())
    data["models"]["cyclegan.vintage"]["cuda_dtype"] = "half"
    data["models"]["dcgan.faces64"]["cuda_dtype"] = "bfloat16"
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data))
    assert weights.validate_manifest(path) == [
        "cyclegan.vintage: cuda_dtype must be one of float16, bfloat16, float32 (or absent for float32)"]


def test_validator_refuses_unknown_archs_and_malformed_sizes(tmp_path):
    data = json.loads(weights.MANIFEST_PATH.read_text())
    data["models"]["dcgan.faces64"]["arch"] = "external"  # raw files for other libraries are not a kind of model here
    data["models"]["lama.big_lama"]["input"]["multiple_of"] = 0
    data["models"]["migan.places2_512"]["sources"][0]["size"] = "28 MB"
    data["models"]["latent.encoder_dcgan64"]["input"]["face_layout"] = "ffhq"
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data))
    assert weights.validate_manifest(path) == [
        "dcgan.faces64: unknown arch 'external'",
        "lama.big_lama: input.multiple_of must be a positive integer",
        "migan.places2_512: source 0 (hf): size must be a positive number of bytes",
        "latent.encoder_dcgan64: input.face_layout 'ffhq' is not one of the manifest's face_layouts",
    ]


def test_validator_refuses_a_role_in_an_app_the_model_is_not_listed_under(tmp_path):
    data = json.loads(weights.MANIFEST_PATH.read_text())
    data["models"]["cyclegan.vintage"]["roles"] = {"glasses": "generator"}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data))
    assert weights.validate_manifest(path) == [
        "cyclegan.vintage: roles must map apps it is listed under to a role name"]


def test_a_choice_label_must_be_text(write_manifest):
    from core.weights import get_entry, validate_manifest

    path = write_manifest({"dcgan.x": {"arch": "dcgan", "config": {}, "sources": [], "apps": ["pulse"],
                                       "title": "A DCGAN", "choice_label": 3}})
    assert any("choice_label must be text" in p for p in validate_manifest(path))
    write_manifest({"dcgan.y": {"arch": "dcgan", "config": {}, "sources": [], "apps": ["pulse"], "title": "A DCGAN"}})
    assert get_entry("dcgan.y").choice_label == "A DCGAN"  # no label: the menu shows the title
