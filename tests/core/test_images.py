import io

import numpy as np
import pytest
import torch
from PIL import Image

from core import images


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def gradient(width=40, height=30) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.float32)
    y = np.linspace(0, 255, height, dtype=np.float32)
    array = np.stack([np.broadcast_to(x, (height, width)), np.broadcast_to(y[:, None], (height, width)),
                      np.full((height, width), 128.0)], -1)
    return Image.fromarray(array.round().astype(np.uint8))


def test_tensor_round_trip_is_exact():
    image = gradient()
    tensor = images.to_tensor(image)
    assert tensor.shape == (1, 3, 30, 40) and tensor.dtype == torch.float32
    assert tensor.min() >= -1 and tensor.max() <= 1
    assert tensor[0, 0, 0, 0] == -1 and tensor[0, 0, 0, -1] == 1  # 0 -> -1, 255 -> 1
    assert np.array_equal(np.asarray(images.to_pil(tensor)), np.asarray(image))
    unit = images.to_tensor(image, value_range=(0, 1))
    assert np.array_equal(np.asarray(images.to_pil(unit, value_range=(0, 1))), np.asarray(image))


def test_to_pil_clamps_and_rounds():
    tensor = torch.tensor([-3.0, 1.0 / 255.0 * 2 - 1 + 0.003, 5.0]).view(1, 3, 1, 1)
    assert np.asarray(images.to_pil(tensor))[0, 0].tolist() == [0, 1, 255]
    with pytest.raises(ValueError, match="one image"):
        images.to_pil(torch.zeros(2, 3, 4, 4))


def test_exif_rotation_is_applied():
    image = gradient(40, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    loaded = images.load_image(encode(image, "JPEG", exif=exif, quality=95))
    assert loaded.size == (30, 40)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L", "1", "P", "CMYK", "I;16", "I", "F", "YCbCr"])
def test_every_mode_becomes_rgb(mode):
    source = gradient().convert("RGBA" if mode in ("RGBA", "LA") else "RGB")
    if mode == "I;16":
        array16 = (np.asarray(source.convert("L"), dtype=np.uint16) * 257)
        image = Image.fromarray(array16, "I;16")
    else:
        image = source.convert(mode)
    loaded = images.load_image(image)
    assert loaded.mode == "RGB" and loaded.size == (40, 30)
    if mode == "I;16":  # 16-bit values are scaled, not clipped to white
        assert np.array_equal(np.asarray(loaded)[..., 0], np.asarray(source.convert("L")))


def test_transparent_pixels_become_white():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert np.asarray(images.load_image(rgba))[0, 0].tolist() == [255, 255, 255]
    palette = Image.new("P", (4, 4), 0)
    palette.info["transparency"] = 0
    assert np.asarray(images.load_image(palette))[0, 0].tolist() == [255, 255, 255]


def test_sixteen_bit_png_file():
    array16 = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    data = encode(Image.fromarray(array16, "I;16"), "PNG")
    loaded = np.asarray(images.load_image(data))
    assert loaded[0, 0, 0] == 0 and loaded[-1, -1, 0] == 255


def test_numpy_arrays():
    assert images.load_image(np.zeros((5, 6), np.uint8)).size == (6, 5)
    assert images.load_image(np.ones((5, 6, 4), np.float32)).size == (6, 5)
    assert np.asarray(images.load_image(np.full((2, 2, 3), 65535, np.uint16))).max() == 255
    with pytest.raises(ValueError, match="NaN"):
        images.load_image(np.full((2, 2, 3), np.nan, np.float32))
    with pytest.raises(ValueError, match="shape"):
        images.load_image(np.zeros((2, 2, 7), np.uint8))


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"this is not an image at all", "not an image"),
    (None, "No image"),
])
def test_unreadable_input(data, message):
    with pytest.raises(ValueError, match=message):
        images.load_image(data)


def test_truncated_files_are_refused():
    for fmt in ("PNG", "JPEG"):
        data = encode(gradient(200, 200), fmt)
        with pytest.raises(ValueError, match="corrupt or truncated"):
            images.load_image(data[: len(data) // 2])


def test_size_cap_is_checked_before_decoding(tmp_path):
    big = Image.new("L", (3000, 3000))  # 9 MP, compresses to a few KB
    path = tmp_path / "big.png"
    big.save(path)
    with pytest.raises(ValueError, match="too large"):
        images.load_image(path, limit=4_000_000)
    assert images.load_image(path).size == (3000, 3000)


def test_decompression_bomb_is_refused(tmp_path):
    bomb = Image.new("1", (20000, 20000))  # 400 MP of zeros: a tiny file
    path = tmp_path / "bomb.png"
    bomb.save(path)
    assert path.stat().st_size < 200_000
    with pytest.raises(ValueError, match="too large"):
        images.load_image(path)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(ValueError, match="No image file"):
        images.load_image(tmp_path / "nope.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        images.load_image(tmp_path / "empty.png")


@pytest.mark.parametrize("size", [(1, 1), (5, 7), (64, 64), (63, 130)])
def test_pad_and_unpad(size):
    tensor = torch.rand(1, 3, *size)
    padded, original = images.pad_to_multiple(tensor, 8)
    assert padded.shape[-2] % 8 == 0 and padded.shape[-1] % 8 == 0
    assert padded.shape[-2] - size[0] < 8 and padded.shape[-1] - size[1] < 8
    assert torch.equal(images.unpad(padded, original), tensor)


def test_resize_max_side_never_upscales():
    image = gradient(400, 100)
    assert images.resize_max_side(image, 200).size == (200, 50)
    assert images.resize_max_side(image, 1000).size == (400, 100)


def test_keep_alpha_for_masks():
    rgba = Image.new("RGBA", (4, 4), (255, 255, 255, 0))
    rgba.putpixel((1, 1), (255, 255, 255, 255))
    loaded = images.load_image(rgba, keep_alpha=True)
    assert loaded.mode == "RGBA"
    assert loaded.getpixel((1, 1))[3] == 255 and loaded.getpixel((0, 0))[3] == 0
    assert images.load_image(Image.new("L", (4, 4), 200), keep_alpha=True).getpixel((0, 0)) == (200, 200, 200, 255)


def test_symmetric_padding_repeats_the_edge_as_lama_does():
    row = torch.tensor([[[1, 2, 3]]])
    padded, size = images.pad_to_multiple(row, 5, mode="symmetric")
    assert padded.tolist() == [[[1, 2, 3, 3, 2]] * 5]
    image = torch.from_numpy(np.random.default_rng(0).random((3, 13, 18)))
    padded, size = images.pad_to_multiple(image, 8, mode="symmetric")
    assert padded.shape == (3, 16, 24) and size == (13, 18)
    assert np.array_equal(padded.numpy(), np.pad(image.numpy(), ((0, 0), (0, 3), (0, 6)), mode="symmetric"))
    assert torch.equal(padded[:, 13, :18], image[:, 12])  # edge row repeated (torch 'reflect' would give row 11)
    assert torch.equal(images.unpad(padded, size), image)
    wide, _ = images.pad_to_multiple(torch.arange(3)[None], 10, mode="symmetric")  # more padding than pixels: numpy's rule
    assert wide[0].tolist() == np.pad(np.arange(3), (0, 7), mode="symmetric").tolist()
