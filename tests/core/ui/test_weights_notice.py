"""The one "weights missing" wording: ``core.ui.weights_notice``."""

from core import ui


def test_missing_weights_message_says_how_to_get_them():
    text = ui.missing_weights_message("lama.big_lama")
    assert "LaMa" in text and "python -m core.weights fetch lama.big_lama" in text and "GANHUB_WEIGHTS_DIR" in text


def test_missing_diffusers_pipeline_advice_is_about_the_hub_cache():
    text = ui.missing_weights_message("diffusers.sd_turbo")
    assert "python -m core.weights fetch diffusers.sd_turbo" in text and "HF_HOME" in text
    assert "GANHUB_WEIGHTS_DIR" not in text  # a whole pipeline cannot be one safetensors file
