"""GeneGAN's training data: the data-source choice and the CelebA layout."""

from __future__ import annotations

import pytest

from core.train import genegan as trainer
from core.train import genegan_data


def test_data_source_errors(tmp_path):
    with pytest.raises(ValueError, match="exactly one data source"):
        trainer.main(["--out", str(tmp_path)])
    (tmp_path / "with").mkdir()
    with pytest.raises(ValueError, match="No images"):
        trainer.main(["--with-dir", str(tmp_path / "with"), "--without-dir", str(tmp_path),
                      "--out", str(tmp_path / "o")])


def test_celeba_layout_is_read_and_aligned(tmp_path):
    """A 4-image CelebA folder: attribute column, 5-landmark alignment, cache."""
    from PIL import Image

    root = tmp_path / "celeba"
    (root / "img_align_celeba").mkdir(parents=True)
    names = [f"{i:06d}.jpg" for i in range(1, 5)]
    for i, name in enumerate(names):
        Image.new("RGB", (178, 218), (40 * i, 100, 150)).save(root / "img_align_celeba" / name)
    header = "5_o_Clock_Shadow Eyeglasses Smiling"
    rows = [f"{n} -1 {1 if i % 2 else -1} 1" for i, n in enumerate(names)]
    (root / "list_attr_celeba.txt").write_text(f"{len(names)}\n{header}\n" + "\n".join(rows) + "\n")
    marks = [f"{n} 69 109 106 113 77 142 73 152 108 154" for n in names]
    (root / "list_landmarks_align_celeba.txt").write_text(
        f"{len(names)}\nlefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y "
        "rightmouth_x rightmouth_y\n" + "\n".join(marks) + "\n")
    with_attr, without_attr = genegan_data.load_celeba(root, "Eyeglasses", 64, "glasses", tmp_path / "cache.npz",
                                                  workers=1, log=lambda m: None)
    assert with_attr.shape == (2, 64, 64, 3) and without_attr.shape == (2, 64, 64, 3)
    assert (tmp_path / "cache.npz").exists()
    with pytest.raises(ValueError, match="not in list_attr"):
        genegan_data.load_celeba(root, "Bald", 64, "glasses", tmp_path / "other.npz", workers=1, log=lambda m: None)
