"""The inpainting tasks' models come from the manifest: roles and ids by method."""

from __future__ import annotations

import pytest

from core.pipelines import inpaint_models
from core.weights import load_manifest, models_for_app


def test_the_manifest_names_the_fill_models_and_the_selector():
    assert inpaint_models.fill_model_id("migan") == "migan.places2_512"
    assert inpaint_models.fill_model_id("lama") == "lama.big_lama"
    assert inpaint_models.selector_id() == "sam.vit_base"
    roles = {model_id: load_manifest()[model_id].info.get("roles", {}).get("inpaint") for model_id in models_for_app("inpaint")}
    assert roles == {"lama.big_lama": "fill", "migan.places2_512": "fill", "sam.vit_base": "selector"}
    assert inpaint_models.fill_model_ids() + inpaint_models.selector_ids() == sorted(roles, key=list(roles).index)


def test_a_manifest_without_roles_says_what_is_missing(write_manifest):
    write_manifest({"lama.x": {"arch": "lama", "config": {}, "sources": [], "apps": ["inpaint"]}})
    with pytest.raises(ValueError, match="no inpaint model with arch 'lama' and the inpaint role fill"):
        inpaint_models.fill_model_id("lama")
    with pytest.raises(ValueError, match="the inpaint role selector"):
        inpaint_models.selector_id()
