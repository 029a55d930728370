"""The model card: ``core.ui.page``."""

from core import ui


def test_model_card_lists_licence_and_availability():
    text = ui.model_card_markdown(["dcgan.faces64", "stylegan2.ffhq1024"])
    assert "DigiFace-1M" in text and "Non-commercial".lower() in text.lower()
    assert "python -m core.weights fetch stylegan2.ffhq1024" in text or "| yes |" in text


def test_model_card_says_where_each_model_stands_with_the_fetch_command(isolated_cache, monkeypatch):
    override = isolated_cache / "override"
    override.mkdir()
    (override / "cyclegan.vintage.safetensors").write_bytes(b"")
    monkeypatch.setenv("GANHUB_WEIGHTS_DIR", str(override))
    header, rule, here, missing = ui.model_card_markdown(["cyclegan.vintage", "cyclegan.summer2winter"]).split("\n")
    assert header == "| model | licence | paper | weights here |" and rule == "|---|---|---|---|"
    assert here.endswith("| yes |") and "(`cyclegan.vintage`)" in here
    assert missing.endswith("| no: `python -m core.weights fetch cyclegan.summer2winter` |")
