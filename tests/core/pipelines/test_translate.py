"""Season swap: full-resolution tiling, resize mode, the manifest's metadata, published files."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from skimage import data

import core.models
from core.images import to_pil, to_tensor
from core.pipelines import translate as tr
from core.weights import WeightsUnavailableError, load_model
from tests.conftest import SPECS_DIR

RESNET = dict(ngf=4, n_blocks=1, norm="instance")
UNET = dict(ngf=4, num_downs=6)


def entry(arch, config, sources, size):
    return {"arch": arch, "config": config, "sources": sources, "title": "tiny", "license": "MIT",
            "input": {"size": size, "range": [-1, 1], "channels": "RGB"}, "apps": ["season", "sketch2photo"]}


def translate_photo(model_id, image, mode="tiled", **kwargs) -> Image.Image:
    return tr.run(image, tr.Settings(model_id, mode), **kwargs).image



@pytest.fixture
def tiny_models(tmp_path, write_manifest, isolated_cache, monkeypatch):
    """Tiny random generators as local files, plus an entry whose weights are missing."""
    from core.cache import MODEL_CACHE

    torch.manual_seed(0)
    save_file(core.models.build("cyclegan_resnet", **RESNET).state_dict(), str(tmp_path / "resnet.safetensors"))
    save_file(core.models.build("pix2pix_unet", **UNET).state_dict(), str(tmp_path / "unet.safetensors"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    local = lambda name: [{"kind": "local", "path": name}]  # noqa: E731  (beside the manifest)
    write_manifest({
        "cyclegan.tiny": entry("cyclegan_resnet", RESNET, local("resnet.safetensors"), 32),
        "pix2pix.tiny": entry("pix2pix_unet", UNET, local("unet.safetensors"), 64),
        "cyclegan.missing": entry("cyclegan_resnet", RESNET, local("nope.pth"), 32),
        "cyclegan.tiny_bf16": {**entry("cyclegan_resnet", RESNET, local("resnet.safetensors"), 32),
                               "cpu_autocast": "bfloat16"},
        "pix2pix.tiny_nhwc": {**entry("pix2pix_unet", UNET, local("unet.safetensors"), 64), "cpu_channels_last": True},
    })
    MODEL_CACHE.clear()
    yield
    MODEL_CACHE.clear()


def photo(size=(90, 60)) -> Image.Image:
    return Image.fromarray(data.rocket()).resize(size, Image.Resampling.BILINEAR)


def test_full_resolution_keeps_size_and_matches_the_untiled_model_where_one_tile_suffices(tiny_models):
    image = photo((90, 60))
    tiled = translate_photo("cyclegan.tiny", image, mode="tiled")
    assert tiled.size == image.size
    # 90x60 with 32 px tiles = several tiles; with a tile as big as the image it is one plain pass
    model = load_model("cyclegan.tiny")
    from core.images import to_pil, to_tensor

    whole = to_pil(tr.translate_tensor(model, to_tensor(image), mode="tiled", size=32, tile=128))
    with torch.inference_mode():
        direct = to_pil(model(to_tensor(image)))
    assert np.array_equal(np.asarray(whole), np.asarray(direct))


def test_resize_mode_keeps_the_aspect_ratio_and_returns_the_input_size(tiny_models, monkeypatch):
    seen = []
    model = load_model("cyclegan.tiny")
    original = model.forward
    monkeypatch.setattr(model, "forward", lambda x: seen.append(tuple(x.shape[-2:])) or original(x))
    out = translate_photo("cyclegan.tiny", photo((150, 100)), mode="resize")
    assert out.size == (150, 100)
    assert seen == [(32, 48)]  # shorter side -> the training size (32), aspect ratio kept, multiple of 4


def test_size_cap_has_a_clear_message(tiny_models, monkeypatch):
    monkeypatch.setenv("GANHUB_TILED_MAX_PIXELS", "5000")
    with pytest.raises(ValueError, match=r"100x80 \(0.0 MP\).*'resize' mode"):
        translate_photo("cyclegan.tiny", photo((100, 80)), mode="tiled")
    assert translate_photo("cyclegan.tiny", photo((100, 80)), mode="resize").size == (100, 80)
    with pytest.raises(ValueError, match="Unknown resolution mode"):
        translate_photo("cyclegan.tiny", photo(), mode="squash")


def test_missing_weights_say_what_to_do(tiny_models):
    with pytest.raises(WeightsUnavailableError, match="python -m core.weights fetch cyclegan.missing"):
        translate_photo("cyclegan.missing", photo())


def test_published_cyclegan_pickle_from_the_hub_is_converted_and_loaded(local_hub, write_manifest):
    """A pre-0.4 style CycleGAN file (with stale InstanceNorm stats) served as a Hub file loads strictly."""
    spec = json.loads((SPECS_DIR / "cyclegan_resnet9.json").read_text())
    g = torch.Generator().manual_seed(0)
    state = {}
    for key, shape, dtype in spec["state_dict"] + spec["published_checkpoint_extra_keys"]:
        shape = [d // 16 if i < 2 and d % 64 == 0 else d for i, d in enumerate(shape)]  # ngf 64 -> 4
        state[key] = torch.tensor(1) if dtype == "int64" else 0.1 * torch.randn(shape, generator=g)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    commit = local_hub.add_file("org/cyclegan", "latest_net_G.pth", buffer.getvalue())
    config = {"ngf": 4, "n_blocks": 9, "norm": "instance"}
    write_manifest({"cyclegan.hub": entry("cyclegan_resnet", config, [
        {"kind": "hf", "repo_id": "org/cyclegan", "filename": "latest_net_G.pth", "revision": commit,
         "sha256": None, "format": {"type": "torch_pickle"}}], 32)})
    from core.cache import MODEL_CACHE

    MODEL_CACHE.clear()
    out = translate_photo("cyclegan.hub", photo((40, 28)))
    assert out.size == (40, 28)
    MODEL_CACHE.clear()


@pytest.mark.real_weights("cyclegan.vintage")
def test_vintage_model_on_a_real_photo_desaturates_deterministically():
    from skimage.color import rgb2lab

    rocket = Image.fromarray(data.rocket()).resize((256, 171), Image.Resampling.LANCZOS)
    first = translate_photo("cyclegan.vintage", rocket, mode="tiled")
    second = translate_photo("cyclegan.vintage", rocket, mode="tiled")
    a, b = np.asarray(rocket, dtype=np.float64), np.asarray(first, dtype=np.float64)
    assert first.size == rocket.size
    assert np.array_equal(b, np.asarray(second))  # deterministic
    assert np.abs(a - b).mean() > 5  # not the identity
    # the documented faded-film look: much less colourful (Lab chroma), the blue dusk sky turns grey
    chroma = lambda x: np.hypot(*rgb2lab(x / 255.0)[..., 1:].transpose(2, 0, 1)).mean()  # noqa: E731
    assert chroma(b) < 0.7 * chroma(a)
    assert a[..., 2].mean() - a[..., 0].mean() > 20 and abs(b[..., 2].mean() - b[..., 0].mean()) < 10
    # geometry is kept: the output's edges sit where the input's are
    gray_a, gray_b = a.mean(2), b.mean(2)
    corr = np.corrcoef(np.diff(gray_a, axis=1).ravel(), np.diff(gray_b, axis=1).ravel())[0, 1]
    assert corr > 0.5


@pytest.mark.real_weights("cyclegan.vintage")
def test_degenerate_shapes_are_bounded_or_refused_clearly():
    from PIL import Image


    strip = translate_photo("cyclegan.vintage", Image.new("RGB", (2000, 10), (90, 120, 200)), mode="resize")
    assert strip.size == (2000, 10)  # processed at 2048x12, not 102400x512
    with pytest.raises(ValueError, match="at least 8 px"):
        translate_photo("cyclegan.vintage", Image.new("RGB", (3, 3)), mode="tiled")


@pytest.mark.parametrize("setting", ["1", "0"])
def test_cpu_bfloat16_opt_in_runs_under_autocast_and_stays_close(tiny_models, monkeypatch, setting):
    # The same weights with and without the manifest's cpu_autocast field: forced on, the output
    # differs (autocast really ran) but stays close; turned off, it is bit-exact. (Random 4-channel
    # weights amplify rounding: the trained vintage generator differs by at most 1.6 levels,
    # bench/RESULTS.md.)
    monkeypatch.setenv("GANHUB_CPU_BF16", setting)
    image = photo((64, 48))
    fp32 = np.asarray(translate_photo("cyclegan.tiny", image, mode="tiled")).astype(int)
    opted = np.asarray(translate_photo("cyclegan.tiny_bf16", image, mode="tiled")).astype(int)
    if setting == "0":
        assert np.array_equal(opted, fp32)
    else:
        diff = np.abs(opted - fp32)
        assert diff.max() > 0 and diff.max() <= 32 and diff.mean() < 2


def test_a_time_budget_finishes_the_tiles_in_the_fast_mode(tiny_models):
    from core.limits import Budget

    class AfterTwoTiles(Budget):
        calls = 0

        def expired(self):
            self.calls += 1
            return self.calls > 2

    image = photo((90, 60))
    budget = AfterTwoTiles(seconds=120)
    out = translate_photo("cyclegan.tiny", image, mode="tiled", budget=budget)
    assert out.size == image.size
    [note] = budget.notes
    assert "stopped after 2 of 12 tiles at full resolution; the rest of the photo comes from the fast mode" in note
    full = np.asarray(translate_photo("cyclegan.tiny", image, mode="tiled"), dtype=float)
    fast = np.asarray(translate_photo("cyclegan.tiny", image, mode="resize"), dtype=float)
    out = np.asarray(out, dtype=float)
    assert np.abs(out[:16, :16] - full[:16, :16]).max() <= 1  # the first tile: full resolution
    assert np.abs(out[-16:, -16:] - fast[-16:, -16:]).max() <= 1  # the last one: the fast mode


def test_settings_refuse_unknown_models_and_modes(tiny_models):
    with pytest.raises(ValueError, match=r"Unknown model 'nope'; choose one of cyclegan.tiny, pix2pix.tiny"):
        tr.Settings("nope")
    with pytest.raises(ValueError, match="Unknown resolution mode 'squash'"):
        tr.Settings("cyclegan.tiny", "squash")
    assert tr.Settings().model_id == "cyclegan.tiny"  # the first of the app's models in the manifest


def test_a_model_passed_in_is_used_and_the_details_say_what_ran(tiny_models):
    torch.manual_seed(5)
    other = core.models.build("cyclegan_resnet", **RESNET).eval()
    image = photo((40, 28))
    result = tr.run(image, tr.Settings("cyclegan.tiny", "resize"), model=other)
    expected = tr.translate_tensor(other, to_tensor(image), "resize", 32)
    assert np.array_equal(np.asarray(result.image), np.asarray(to_pil(expected)))
    assert not np.array_equal(np.asarray(result.image), np.asarray(translate_photo("cyclegan.tiny", image, "resize")))
    assert {k: result.details[k] for k in ("model_id", "mode", "size", "tiles")} == {
        "model_id": "cyclegan.tiny", "mode": "resize", "size": (40, 28), "tiles": (1, 1)}


def test_the_value_range_comes_from_the_manifest(tiny_models, tmp_path, write_manifest):
    import json

    models = json.loads((tmp_path / "weights_manifest.json").read_text())["models"]
    models["cyclegan.tiny"]["input"]["range"] = [0, 1]
    write_manifest(models)
    model = load_model("cyclegan.tiny")
    image = photo((40, 28))
    result = tr.run(image, tr.Settings("cyclegan.tiny", "resize"), model=model)
    expected = tr.translate_tensor(model, to_tensor(image, (0.0, 1.0)), "resize", 32)
    assert np.array_equal(np.asarray(result.image), np.asarray(to_pil(expected, (0.0, 1.0))))
