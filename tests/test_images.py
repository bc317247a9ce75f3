"""Image loading: formats, BT.601 gray, EXIF orientation, sources, guards."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from convlens.errors import ImageError
from convlens.images import load_image, resize_max_side, sample_path, to_gray


def _rgb_array(height: int = 20, width: int = 30, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_gray_is_bt601_luma_of_the_sample(chelsea):
    rgb = np.asarray(Image.open(chelsea).convert("RGB"), dtype=np.float64)
    expected = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]) / 255.0
    gray = load_image(chelsea, mode="gray")
    assert gray.shape == (1, 300, 451)
    assert gray.dtype == torch.float32
    np.testing.assert_allclose(gray[0].numpy(), expected, atol=1e-6)


def test_red_and_blue_weights_are_not_swapped():
    red = np.zeros((2, 2, 3), dtype=np.uint8)
    red[..., 0] = 255
    blue = np.zeros((2, 2, 3), dtype=np.uint8)
    blue[..., 2] = 255
    assert float(load_image(red)[0, 0, 0]) == pytest.approx(0.299)
    assert float(load_image(blue)[0, 0, 0]) == pytest.approx(0.114)


def test_rgb_mode_scales_to_unit_range(chelsea):
    rgb = load_image(chelsea, mode="rgb")
    expected = np.asarray(Image.open(chelsea).convert("RGB"), dtype=np.float32) / 255
    assert rgb.shape == (3, 300, 451)
    np.testing.assert_allclose(rgb.permute(1, 2, 0).numpy(), expected, atol=1e-7)


def test_gray_sample_in_rgb_mode_repeats_its_channel():
    camera = load_image(sample_path("camera"), mode="rgb")
    assert camera.shape == (3, 512, 512)
    assert torch.equal(camera[0], camera[2])


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".bmp", ".tif", ".webp", ".gif"])
def test_every_common_format_loads(tmp_path, suffix):
    array = _rgb_array()
    path = tmp_path / f"picture{suffix}"
    Image.fromarray(array).save(path)
    loaded = load_image(path, mode="rgb")
    assert loaded.shape == (3, 20, 30)
    if suffix in (".png", ".bmp", ".tif"):
        np.testing.assert_allclose(loaded.permute(1, 2, 0).numpy(), array / 255, atol=1e-6)


def test_gif_takes_the_first_frame(tmp_path):
    frames = [Image.fromarray(np.full((8, 8), value, dtype=np.uint8)) for value in (10, 200)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert float(load_image(path).mean()) == pytest.approx(10 / 255, abs=2 / 255)


def test_exif_orientation_is_honoured(tmp_path):
    array = _rgb_array(10, 40)
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif, quality=95)
    assert load_image(path).shape == (1, 40, 10)


def test_transparency_is_composited_over_white(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)  # fully transparent black
    path = tmp_path / "clear.png"
    Image.fromarray(rgba, "RGBA").save(path)
    assert torch.allclose(load_image(path), torch.ones(1, 4, 4))


def test_sixteen_bit_png_scales_by_65535(tmp_path):
    array = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(array).save(path)
    np.testing.assert_allclose(load_image(path)[0].numpy(), array / 65535, atol=1e-6)


def test_numpy_pil_and_tensor_sources_agree():
    array = _rgb_array()
    from_numpy = load_image(array, mode="rgb")
    from_pil = load_image(Image.fromarray(array), mode="rgb")
    from_tensor = load_image(torch.from_numpy(array).permute(2, 0, 1), mode="rgb")
    assert torch.equal(from_numpy, from_pil)
    assert torch.equal(from_numpy, from_tensor)


def test_float_arrays_must_lie_in_unit_range():
    assert load_image(np.full((3, 3), 0.5, dtype=np.float32)).max() == 0.5
    with pytest.raises(ImageError, match=r"\[0, 1\]"):
        load_image(np.full((3, 3), 7.0))


def test_max_side_shrinks_with_antialiasing():
    stripes = np.tile(np.array([0, 255], dtype=np.uint8), (64, 32))  # 1-px vertical stripes
    small = load_image(stripes, max_side=16)
    assert small.shape == (1, 16, 16)
    # antialiasing averages the stripes to mid-gray instead of aliasing to all-black/white
    assert float(small.min()) > 0.4 and float(small.max()) < 0.6


def test_max_side_never_enlarges():
    image = torch.rand(1, 10, 20)
    assert resize_max_side(image, 100) is image


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 64), st.integers(1, 64), st.integers(1, 40))
def test_max_side_bounds_the_longer_side(height, width, max_side):
    out = resize_max_side(torch.rand(1, height, width), max_side)
    assert max(out.shape[1:]) <= max(max_side, 1) or max(height, width) <= max_side
    assert min(out.shape[1:]) >= 1


def test_to_gray_matches_formula():
    rgb = torch.rand(3, 5, 6)
    expected = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    assert torch.allclose(to_gray(rgb)[0], expected, atol=1e-6)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "nope.png")


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "fake.jpg"
    path.write_text("this is not a picture")
    with pytest.raises(ImageError, match="not an image"):
        load_image(path)


def test_truncated_jpeg(tmp_path):
    path = tmp_path / "cut.jpg"
    Image.fromarray(_rgb_array(64, 64)).save(path, quality=90)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated"):
        load_image(path)


def test_pixel_limit_guards_against_decompression_bombs(tmp_path):
    path = tmp_path / "big.png"
    Image.new("L", (2000, 1000)).save(path)
    with pytest.raises(ImageError, match="Mpx"):
        load_image(path, max_pixels=1_000_000)


def test_unknown_mode_and_sample():
    with pytest.raises(ImageError, match="mode"):
        load_image(np.zeros((2, 2), np.uint8), mode="cmyk")
    with pytest.raises(ImageError, match="chelsea"):
        sample_path("dog")
