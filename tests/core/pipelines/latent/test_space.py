"""Latent lab procedures on tiny generators: walks, directions, style mixing, inversion, files, edits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from core.faces import detector_ids
from core.models.dcgan import DCGANGenerator
from core.models.stylegan2 import StyleGAN2Generator
from core.pipelines import latent as lab
from core.pipelines import latent_files as files
from core.pipelines import latent_inversion as inv


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run several times faster on one thread (no OpenMP hand-offs on a loaded CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def dcgan():
    """A tiny DCGAN whose BatchNorm statistics are calibrated, so its images have contrast."""
    torch.manual_seed(0)
    model = DCGANGenerator(nz=8, ngf=4)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # a cumulative average over the calibration batches
    with torch.no_grad():
        for _ in range(4):
            model(torch.randn(64, 8))
    gen = lab.LatentGenerator(model.eval().requires_grad_(False), "tiny.dcgan")
    assert lab.to_uint8(gen.decode(gen.z_from_seeds(range(8)))).std() > 20
    return gen


@pytest.fixture(scope="module")
def stylegan():
    torch.manual_seed(0)
    model = StyleGAN2Generator(size=64, style_dim=16, n_mlp=2, channels={r: 8 for r in (4, 8, 16, 32, 64)})
    return lab.LatentGenerator(model.eval().requires_grad_(False), "tiny.stylegan2", w_avg_samples=256)


# --- walk -------------------------------------------------------------------------------------
def test_slerp_stays_on_the_sphere_at_constant_angular_speed():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(100, generator=g), torch.randn(100, generator=g)
    b = b / b.norm() * a.norm()
    path = lab.interpolate(a, b, 11, "slerp")
    assert torch.allclose(path.norm(dim=1), a.norm().expand(11), rtol=1e-5)
    assert torch.allclose(path[0], a, atol=1e-5) and torch.allclose(path[-1], b, atol=1e-5)
    cos = (path[1:] * path[:-1]).sum(1) / (path[1:].norm(dim=1) * path[:-1].norm(dim=1))
    steps = torch.arccos(cos.clamp(-1, 1))
    assert torch.allclose(steps, steps.mean().expand(10), rtol=1e-3)
    # lerp cuts through the ball: its midpoint of two near-orthogonal 100-d vectors is ~0.7 |a|
    assert lab.interpolate(a, b, 3, "lerp")[1].norm() < 0.8 * a.norm()


def test_slerp_interpolates_the_norm_linearly_and_handles_parallel_vectors():
    a = torch.tensor([3.0, 0.0])
    b = torch.tensor([0.0, 1.0])
    path = lab.slerp(a, b, torch.tensor([0.0, 0.5, 1.0]))
    assert torch.allclose(path.norm(dim=1), torch.tensor([3.0, 2.0, 1.0]))
    assert torch.allclose(path[1] / path[1].norm(), torch.tensor([1.0, 1.0]) / 2**0.5)
    same = lab.slerp(a, 2 * a, torch.tensor([0.5]))  # zero angle: no division by sin(0)
    assert torch.allclose(same[0], 1.5 * a)


def test_interpolate_rejects_bad_requests():
    a = torch.zeros(4)
    with pytest.raises(ValueError, match="between 2 and 120"):
        lab.interpolate(a, a, 1)
    with pytest.raises(ValueError, match="lerp, slerp"):
        lab.interpolate(a, a, 4, "cubic")
    with pytest.raises(ValueError, match="differ in shape"):
        lab.interpolate(a, torch.zeros(5), 4)


def test_smoothness_measures_neighbour_steps():
    even = np.stack([np.full((2, 2, 3), 10 * i, np.uint8) for i in range(5)])
    s = lab.smoothness(even)
    assert s["mean_step"] == pytest.approx(10) and s["max_step"] == pytest.approx(10)
    assert s["step_cv"] == pytest.approx(0) and s["path_length"] == pytest.approx(40)
    jump = even.copy()
    jump[4] = 200
    assert lab.smoothness(jump)["step_cv"] > 1


# --- arithmetic -------------------------------------------------------------------------------
def test_direction_from_synthetic_labels_recovers_the_planted_direction():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(4000, 32, generator=g)
    planted = torch.randn(32, generator=g)
    planted /= planted.norm()
    score = (z @ planted + 0.3 * torch.randn(4000, generator=g)).numpy()
    for threshold in (0.5, None):  # a binary classifier's labels, and the thirds of a measurement
        indices, labels = lab.split_by_score(score, threshold)
        direction = lab.attribute_direction(z[indices], labels)
        cosine = float(direction @ planted / direction.norm())
        assert cosine > 0.95, (threshold, cosine)
    # moving along it raises the score of every sample
    moved = lab.along(z[0], direction, [0.0, 1.0, 2.0])
    assert (np.diff((moved @ planted).numpy()) > 0).all()


def test_split_by_score_leaves_out_missing_faces_and_the_middle_third():
    scores = np.array([np.nan, 1, 2, 3, 4, 5, 6, np.nan, 7, 8, 9])
    indices, labels = lab.split_by_score(scores)
    assert sorted(scores[indices[~labels]]) == [1, 2, 3] and sorted(scores[indices[labels]]) == [7, 8, 9]
    indices, labels = lab.split_by_score(np.array([0.1, np.nan, 0.9]), threshold=0.5)
    assert list(indices) == [0, 2] and list(labels) == [False, True]
    with pytest.raises(ValueError, match="at least 5 samples with and without"):
        lab.attribute_direction(torch.zeros(10, 3), np.arange(10) < 2)


class LinearFaces(torch.nn.Module):
    """A generator whose images depend visibly on z (a random DCGAN this small draws flat grey)."""

    nz = 8

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(3 * 64 * 64, 8, generator=torch.Generator().manual_seed(4)) * 0.3)

    def forward(self, z):
        return torch.tanh(z @ self.weight.T).view(-1, 3, 64, 64)


def test_compute_directions_labels_samples_by_their_measurements(monkeypatch):
    from core.pipelines import latent_attributes as attrs

    def brightness(images, classifier):  # a stand-in measurement for every attribute: mean pixel value
        value = images.reshape(len(images), -1).mean(1).astype(float)
        return {name: (value > np.median(value)).astype(float) if name in attrs.THRESHOLDS else value
                for name in attrs.ATTRIBUTES}

    monkeypatch.setattr(attrs, "measure", brightness)
    gen = lab.LatentGenerator(LinearFaces().requires_grad_(False), "linear")
    directions, info = attrs.compute_directions(gen, None, samples=300, seed=100, log=lambda _: None)
    assert set(directions) == set(attrs.ATTRIBUTES) and info["samples"] == 300
    assert info["attributes"]["yaw"]["with"] == info["attributes"]["yaw"]["without"] == 100  # thirds
    glasses = info["attributes"]["eyeglasses"]
    assert glasses["with"] + glasses["without"] == 300 and 100 < glasses["with"] < 200  # every sample, P > 0.5
    z = gen.z_from_seeds(range(5000, 5020))  # held out
    darker, brighter = (gen.decode(z + s * directions["hair_brightness"]).mean((1, 2, 3)) for s in (-1, 1))
    assert (brighter > darker).all()


# --- generators -------------------------------------------------------------------------------
def test_each_sample_has_its_own_seed(dcgan):
    grid = dcgan.z_from_seeds(range(3, 9))
    assert torch.equal(grid[2], dcgan.z_from_seeds([5])[0])
    images = dcgan.decode(grid)
    assert images.shape == (6, 3, 64, 64) and images.min() >= -1 and images.max() <= 1
    assert torch.equal(dcgan.decode(grid[2]), images[2:3])
    with pytest.raises(ValueError, match="latent space"):
        dcgan.decode(grid, space="w")


def test_stylegan2_truncation_and_w_space(stylegan):
    z = stylegan.z_from_seeds([0, 1])
    assert torch.allclose(stylegan.to_w(z, psi=0.0), stylegan.w_avg.expand(2, -1))
    w = stylegan.to_w(z, psi=0.7)
    assert torch.allclose(stylegan.decode(z, "z", psi=0.7), stylegan.decode(w, "w"), atol=1e-5)
    assert torch.equal(stylegan.decode(w, "w"), stylegan.decode(w, "w"))  # stored noise: deterministic


def test_style_mixing_takes_the_chosen_layers_from_the_second_latent(stylegan):
    assert lab.layer_indices("coarse", 18) == [0, 1, 2, 3]
    assert lab.layer_indices("middle", 18) == [4, 5, 6, 7]
    assert lab.layer_indices("fine", 18) == list(range(8, 18))
    with pytest.raises(ValueError, match="no fine layers"):
        lab.layer_indices("fine", 8)
    w = stylegan.to_w(stylegan.z_from_seeds([0, 1]))
    n = stylegan.model.n_latent
    mixed = lab.mix_styles(w[0], w[1], "fine", n)
    assert mixed.shape == (n, 16)
    assert torch.equal(mixed[:8], w[0].expand(8, -1)) and torch.equal(mixed[8:], w[1].expand(n - 8, -1))
    image = stylegan.decode(mixed[None], "w")
    assert not torch.equal(image, stylegan.decode(w[:1], "w"))


# --- inversion --------------------------------------------------------------------------------
class NoisyEncoder(torch.nn.Module):
    """A stand-in encoder that answers the true latent plus a known error."""

    def __init__(self, truth: torch.Tensor, error: torch.Tensor):
        super().__init__()
        self.register_buffer("answer", truth + error)

    def forward(self, image):
        return self.answer[: image.shape[0]]


def test_optimisation_recovers_the_latent_of_a_sample(dcgan):
    truth = dcgan.z_from_seeds([11, 12])
    target = dcgan.decode(truth)
    result = inv.invert(dcgan, target, "optimise", steps=200, restarts=3, lr=0.05, prior_weight=0)
    relative = (result.latent - truth).norm(dim=1) / truth.norm(dim=1)
    assert (relative < 0.1).all(), relative
    assert (result.pixel_error < 1.0).all()


def test_hybrid_refines_the_encoders_guess(dcgan):
    truth = dcgan.z_from_seeds([21, 22])
    target = dcgan.decode(truth)
    encoder = NoisyEncoder(truth, 0.5 * torch.randn(truth.shape, generator=torch.Generator().manual_seed(3)))
    guess = inv.invert(dcgan, target, "encoder", encoder=encoder)
    assert torch.equal(guess.latent, encoder.answer) and guess.steps == 0
    refined = inv.invert(dcgan, target, "hybrid", encoder=encoder, steps=100, prior_weight=0)
    assert ((refined.latent - truth).norm(dim=1) < 0.3 * (guess.latent - truth).norm(dim=1)).all()
    assert (refined.pixel_error < guess.pixel_error).all()


def test_inversion_rejects_what_it_cannot_do(dcgan, stylegan):
    target = dcgan.decode(dcgan.z_from_seeds([0]))
    with pytest.raises(ValueError, match="needs the latent encoder"):
        inv.invert(dcgan, target, "hybrid")
    with pytest.raises(ValueError, match="optimise, encoder, hybrid"):
        inv.invert(dcgan, target, "magic")
    with pytest.raises(ValueError, match="Only the DCGAN has an encoder"):
        inv.invert(stylegan, target, "encoder", encoder=torch.nn.Identity())


def test_feature_loss_uses_the_classifiers_first_blocks(dcgan):
    from core.models.glasses_classifier import GlassesClassifier

    features = inv.classifier_features(GlassesClassifier().eval())
    assert features(torch.zeros(1, 3, 64, 64)).shape == (1, 32, 16, 16)
    truth = dcgan.z_from_seeds([5])
    result = inv.invert(dcgan, dcgan.decode(truth), "optimise", steps=20, restarts=1, features=features,
                        feature_weight=1.0)
    assert result.latent.shape == (1, 8) and np.isfinite(result.pixel_error).all()


def test_edits_change_only_the_face_region_of_a_photo():
    from core.faces import AlignedFace

    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 255, (200, 160, 3), np.uint8))
    matrix = np.array([[0.5, 0, -10.0], [0, 0.5, -20.0]])  # the face: a 128 px square at (20, 40)
    aligned = AlignedFace(photo.transform((64, 64), Image.Transform.AFFINE, (2, 0, 20, 0, 2, 40)), matrix, photo.size)
    before, after = torch.zeros(3, 64, 64), torch.full((3, 64, 64), 0.5)  # the edit brightens by 64 levels
    for blend in ("residual", "direct"):
        edited, crop = inv.edit_photo(photo, aligned, before, after, blend)
        assert edited.size == photo.size and crop.size == (64, 64)
        changed = (np.asarray(edited) != np.asarray(photo)).any(-1)
        assert changed[40:168, 20:148].mean() > 0.3 and not changed[:38].any() and not changed[:, 150:].any()
    unchanged, _ = inv.edit_photo(photo, aligned, before, before, "residual")
    assert np.array_equal(np.asarray(unchanged), np.asarray(photo))  # no edit: the photo, bit for bit
    with pytest.raises(ValueError, match="residual' or 'direct"):
        inv.edit_photo(photo, aligned, before, after, "blend")


# --- files ------------------------------------------------------------------------------------
def test_latent_files_round_trip(dcgan, stylegan, tmp_path):
    z = dcgan.z_from_seeds([7])[0]
    loaded = files.load_latent(files.save_latent(tmp_path / "a.safetensors", z, "tiny.dcgan", "z", 7), dcgan)
    assert torch.equal(loaded.latent, z) and loaded.seed == 7 and loaded.space == "z" and loaded.model == "tiny.dcgan"
    loaded = files.load_latent(files.save_latent(tmp_path / "a.npy", z, "tiny.dcgan", "z"), dcgan)
    assert torch.equal(loaded.latent, z) and loaded.seed is None
    w_plus = lab.mix_styles(*stylegan.to_w(stylegan.z_from_seeds([0, 1])), "coarse", stylegan.model.n_latent)
    path = files.save_latent(tmp_path / "w.safetensors", w_plus, "tiny.stylegan2", "w")
    assert files.load_latent(path, stylegan).space == "w"


def test_latent_uploads_are_checked_strictly(dcgan, stylegan, tmp_path):
    from safetensors.torch import save_file

    def npy(name, array):
        np.save(tmp_path / name, array, allow_pickle=True)
        return tmp_path / name

    cases = {
        "wrong suffix": (tmp_path / "z.txt", "must be .safetensors or .npy"),
        "wrong shape": (npy("short.npy", np.zeros(5, np.float32)), r"shape \[5\]; a z latent of this generator is \[8\]"),
        "nan": (npy("nan.npy", np.full(8, np.nan, np.float32)), "NaN or infinite"),
        "huge": (npy("huge.npy", np.full(8, 1e6, np.float32)), "values up to 1e\\+06"),
        "pickle": (npy("objects.npy", np.array([{"a": 1}], dtype=object)), "not a plain numeric .npy"),
        "text": (npy("text.npy", np.array(["a"] * 8)), "a latent is an array of floats"),
    }
    (tmp_path / "z.txt").write_text("0")
    (tmp_path / "garbage.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    cases["garbage"] = (tmp_path / "garbage.safetensors", "not a valid .safetensors file")
    save_file({"latent": torch.zeros(8), "extra": torch.zeros(1)}, str(tmp_path / "two.safetensors"))
    cases["two tensors"] = (tmp_path / "two.safetensors", "exactly one tensor named 'latent'")
    save_file({"latent": torch.zeros(8)}, str(tmp_path / "other.safetensors"), metadata={"model": "stylegan2.x"})
    cases["other model"] = (tmp_path / "other.safetensors", "is a latent of stylegan2.x; choose that generator")
    (tmp_path / "big.npy").write_bytes(b"\0" * (files.MAX_LATENT_BYTES + 1))
    cases["too big"] = (tmp_path / "big.npy", "at most 1 MB")
    for what, (path, message) in cases.items():
        with pytest.raises(ValueError, match=message):
            files.load_latent(path, dcgan)
        print("ok", what)
    with pytest.raises(ValueError, match="w-space latent, which the DCGAN"):
        files.load_latent(npy("w.npy", np.zeros(8, np.float32)), dcgan, space="w")
    w_plus = np.zeros((stylegan.model.n_latent, 16), np.float32)
    assert files.load_latent(npy("wplus.npy", w_plus), stylegan, space="w").latent.shape == w_plus.shape
    with pytest.raises(ValueError, match=r"is \[16\]"):
        files.load_latent(npy("wplus_as_z.npy", w_plus), stylegan, space="z")


def test_animation_and_strip(tmp_path):
    frames = np.stack([np.full((64, 64, 3), 20 * i, np.uint8) for i in range(6)])
    path = files.animated_webp(frames, tmp_path / "walk.webp", fps=10)
    with Image.open(path) as image:
        assert image.format == "WEBP" and image.n_frames == 6 and image.size == (64, 64)
    assert files.strip(frames, cell=96).size == (6 * 96, 96)


# --- the real DCGAN -------------------------------------------------------------------------------
@pytest.mark.real_weights("dcgan.faces64", "genegan.glasses_classifier64", *detector_ids())
def test_the_shipped_glasses_direction_flips_the_classifier_on_most_faces():
    from core.latent_lab import DEFAULT_ALPHA
    from core.pipelines import latent_attributes as attrs
    from core.weights import REPO_ROOT, load_model

    gen = lab.LatentGenerator(load_model("dcgan.faces64", device="cpu", dtype=torch.float32), "dcgan.faces64")
    classifier = load_model(attrs.CLASSIFIER_ID, device="cpu", dtype=torch.float32)
    directions, info = attrs.load_directions(REPO_ROOT / "apps/latent/data/directions_dcgan_faces64.safetensors",
                                             "dcgan.faces64")
    assert set(directions) == set(attrs.ATTRIBUTES) and info["samples"] == 3000
    z = gen.z_from_seeds(range(3_000_000, 3_000_060))  # held out: neither the directions' nor the README's faces
    before = attrs.measure(lab.to_uint8(gen.decode(z)), classifier)["eyeglasses"]
    without = np.flatnonzero(before <= 0.5)
    assert len(without) > 30
    after = attrs.measure(lab.to_uint8(gen.decode(z[without] + DEFAULT_ALPHA["eyeglasses"] * directions["eyeglasses"])),
                          classifier)["eyeglasses"]
    assert np.nanmean(after > 0.5) > 0.5
    # and the opposite direction takes glasses off most faces that wear them
    wearing = np.flatnonzero(before > 0.5)
    off = attrs.measure(lab.to_uint8(gen.decode(z[wearing] - DEFAULT_ALPHA["eyeglasses"] * directions["eyeglasses"])),
                        classifier)["eyeglasses"]
    assert np.nanmean(off <= 0.5) > 0.5
