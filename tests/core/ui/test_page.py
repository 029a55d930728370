"""The model card: ``core.ui.page``."""

from core import ui


def test_model_card_lists_licence_and_availability():
    text = ui.model_card_markdown(["dcgan.faces64", "stylegan2.ffhq1024"])
    assert "DigiFace-1M" in text and "Non-commercial".lower() in text.lower()
    assert "python -m core.weights fetch stylegan2.ffhq1024" in text or "| yes |" in text
