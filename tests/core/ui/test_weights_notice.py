"""The one "weights missing" wording: ``core.ui.weights_notice``."""

from core import ui


def test_missing_weights_message_says_how_to_get_them():
    from core.weights import about_size, download_bytes

    text = ui.missing_weights_message("lama.big_lama")
    assert f"(`lama.big_lama`, {about_size(download_bytes('lama.big_lama'))})" in text  # the manifest's size
    assert "LaMa" in text and "python -m core.weights fetch lama.big_lama" in text and "GANHUB_WEIGHTS_DIR" in text


def test_missing_diffusers_pipeline_advice_is_about_the_hub_cache():
    text = ui.missing_weights_message("diffusers.sd_turbo")
    assert "python -m core.weights fetch diffusers.sd_turbo" in text and "HF_HOME" in text
    assert "GANHUB_WEIGHTS_DIR" not in text  # a whole pipeline cannot be one safetensors file


def test_fetch_command_is_the_one_cli_call():
    assert ui.fetch_command(["cyclegan.vintage", "lama.big_lama"]) == (
        "python -m core.weights fetch cyclegan.vintage lama.big_lama")


def test_status_and_notice_name_only_the_missing_weights(isolated_cache, monkeypatch):
    override = isolated_cache / "override"
    override.mkdir()
    (override / "cyclegan.vintage.safetensors").write_bytes(b"")  # "here": availability does not read it
    monkeypatch.setenv("GANHUB_WEIGHTS_DIR", str(override))
    here, missing = "cyclegan.vintage", "cyclegan.summer2winter"

    assert ui.missing_models([here, missing]) == [missing]
    assert ui.weights_status(here) == "Weights of `cyclegan.vintage`: available here."
    assert ui.weights_status(missing) == "**Weights missing.** " + ui.missing_weights_message(missing)
    assert "`python -m core.weights fetch cyclegan.summer2winter`" in ui.weights_status(missing)

    notice = ui.weights_notice([here, missing], labels={missing: "Summer to winter"})
    assert notice == "**Summer to winter: weights missing.** " + ui.missing_weights_message(missing)
    titled = ui.weights_notice([missing])  # without a label: the manifest's title
    assert titled.startswith("**CycleGAN") and ": weights missing.** The weights of" in titled
    assert ui.weights_notice([here]) == ""
