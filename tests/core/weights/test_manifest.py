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
