"""The manifest's entries and the questions code asks of it."""

from __future__ import annotations

import pytest

from core import weights


def test_unknown_model_id_lists_valid_ids():
    with pytest.raises(ValueError) as err:
        weights.get_entry("nope.nothing")
    assert "dcgan.faces64" in str(err.value) and "cyclegan.vintage" in str(err.value)


def test_face_layouts_come_from_the_manifest():
    from core.weights import face_layout

    layout = face_layout("dcgan_faces64_symmetric")
    assert layout.shape == (5, 2)
    assert layout[0, 0] + layout[1, 0] == pytest.approx(1.0)  # left-right symmetric
    with pytest.raises(ValueError, match="Unknown face layout 'nope'"):
        face_layout("nope")


def test_models_for_app_follows_the_manifest_apps_lists():
    from core.weights import load_manifest, models_for_app

    ids = models_for_app("season")
    assert ids and all("season" in load_manifest()[m].info["apps"] for m in ids)
    assert models_for_app("no-such-app") == []


def test_the_offline_set_is_every_model_with_a_wheel_or_shipped_source():
    offline = weights.offline_models()
    assert {"dcgan.faces64", "cyclegan.vintage", "face.mtcnn_pnet", "face.mtcnn_rnet", "face.mtcnn_onet",
            "pix2pix.edges2faces64", "genegan.eyeglasses64"} <= set(offline)
    for model_id, entry in weights.load_manifest().items():
        kinds = {src.kind for src in entry.sources}
        assert (model_id in offline) == bool(kinds & {"pypi", "local"}), model_id
    assert "stylegan2.ffhq1024" not in offline and "diffusers.sd_turbo" not in offline


def test_download_size_is_the_first_stated_source_size():
    # LaMa's first source states no size; the next one is the 410 MB Lightning checkpoint.
    assert weights.download_bytes("lama.big_lama") == 410_046_389
    assert weights.download_bytes("migan.places2_512") == 28_079_181
    assert weights.download_bytes("diffusers.sd_turbo") is None  # a snapshot: no size in the manifest
    assert weights.about_size(410_046_389) == "about 410 MB"
    assert weights.about_size(28_079_181) == "about 28 MB"
    assert weights.about_size(5_210_000_000) == "about 5.2 GB"
    assert weights.about_size(250_436) == "about 250 kB"
    assert weights.about_size(999) == "999 bytes"


def test_entries_expose_the_fields_code_reads():
    lama, pix2pix, dcgan = (weights.get_entry(i) for i in ("lama.big_lama", "pix2pix.edges2shoes", "dcgan.faces64"))
    assert (lama.input_range, lama.output_range, lama.multiple_of) == ((0.0, 1.0), (0.0, 1.0), 8)
    assert (pix2pix.input_range, pix2pix.input_size, pix2pix.output_size) == ((-1.0, 1.0), 256, 256)
    assert (dcgan.input_range, dcgan.output_range, dcgan.output_size, dcgan.multiple_of) == (None, (-1.0, 1.0), 64, 1)
    assert (pix2pix.cpu_autocast, pix2pix.cpu_channels_last, pix2pix.cuda_dtype) == ("bfloat16", True, "float16")
    assert (dcgan.cpu_autocast, dcgan.cpu_channels_last) == (None, False)
    assert weights.get_entry("face.mtcnn_pnet").input_size is None  # stated as "any (>= 12)"
    assert (dcgan.output_face_layout, weights.get_entry("genegan.eyeglasses64").input_face_layout) == (
        "dcgan_faces64", "dcgan_faces64_symmetric")
    assert "pulse" in dcgan.apps and not dcgan.is_snapshot and weights.get_entry("sam.vit_base").is_snapshot


def test_roles_name_the_model_that_plays_each_part_of_an_app():
    from core.weights import model_for_role, models_for_role

    assert model_for_role("glasses", "classifier") == "genegan.glasses_classifier64"
    assert model_for_role("latent", "encoder") == "latent.encoder_dcgan64"
    assert models_for_role("latent", "generator") == ["dcgan.faces64", "stylegan2.ffhq1024"]
    with pytest.raises(ValueError, match="names 2 models as the generator of the latent app; it should name one"):
        model_for_role("latent", "generator")
