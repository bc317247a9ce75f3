"""Image loading: formats, BT.601 gray, EXIF orientation, sources, guards."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image

from convlens.errors import ImageError, ModelError
from convlens.images import (
    load_image,
    load_image_array,
    match_channels,
    resize_exact,
    resize_max_side,
    sample_path,
    to_gray,
)


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


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 64), st.integers(1, 64), st.integers(1, 40), st.integers(1, 3),
       st.integers(0, 2**32 - 1))
@example(36, 2, 26, 1, 0)  # one pixel wide: torch's antialiased kernel alone gets it wrong
def test_max_side_bounds_the_longer_side(height, width, max_side, channels, seed):
    """Against exact arithmetic for the size and Pillow for the pixels: an image that fits
    comes back untouched; a larger one's longer side becomes ``max_side`` exactly, its shorter
    side the scaled one rounded (at least 1), and each channel is Pillow's antialiased bilinear
    resize of it to that size."""
    image = torch.from_numpy(np.random.default_rng(seed).random((channels, height, width),
                                                                dtype=np.float32))
    out = resize_max_side(image, max_side)
    longer, shorter = max(height, width), min(height, width)
    if longer <= max_side:
        assert torch.equal(out, image)
        return
    out_height, out_width = out.shape[1:]
    assert out.shape[0] == channels
    assert (out_height if height >= width else out_width) == max_side
    out_shorter = out_width if height >= width else out_height
    assert abs(out_shorter - max(1.0, shorter * max_side / longer)) <= 0.5
    for channel in range(channels):
        expected = Image.fromarray(image[channel].numpy()).resize(
            (out_width, out_height), Image.Resampling.BILINEAR)
        np.testing.assert_allclose(out[channel].numpy(), np.clip(np.asarray(expected), 0, 1),
                                   atol=1e-5, err_msg=f"channel {channel}")


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


# --- bit depths and sample formats: each mode's scale, against values worked by hand ---------

def _tiff_with_sample_format(path, values, sample_format: int) -> None:
    """A 32-bit integer TIFF whose SampleFormat tag (339) says ``sample_format`` (1 unsigned,
    2 signed); Pillow itself writes its mode "I" as signed."""
    image = Image.new("I", (len(values), 1))
    image.putdata(values)
    image.save(path)
    data = bytearray(path.read_bytes())
    entry = bytes([0x53, 0x01, 0x03, 0x00, 0x01, 0, 0, 0, 0x02, 0x00])  # tag 339, SHORT, 1, 2
    at = data.find(entry)
    assert at > 0
    data[at + 8] = sample_format
    path.write_bytes(bytes(data))


def test_float_tiff_loads_at_its_real_values(tmp_path):
    path = tmp_path / "real.tif"
    image = Image.new("F", (3, 1))
    image.putdata([0.0, 0.5, 0.8125])
    image.save(path)
    assert Image.open(path).mode == "F"
    assert load_image(path)[0, 0].tolist() == [0.0, 0.5, 0.8125]  # exact in float32


@pytest.mark.parametrize(("values", "words"), [
    ([0.5, 7.0], r"float image values run from 0\.5 to 7.*\[0, 1\]"),
    ([-0.25, 0.5], r"from -0\.25 to 0\.5"),
    ([float("nan"), 0.5], "NaN"),
])
def test_float_tiff_outside_unit_range_is_refused_by_name(tmp_path, values, words):
    path = tmp_path / "odd.tif"
    image = Image.new("F", (2, 1))
    image.putdata(values)
    image.save(path)
    with pytest.raises(ImageError, match=words) as caught:
        load_image(path)
    assert "odd.tif" in str(caught.value)


def test_dark_sixteen_bit_png_is_still_divided_by_65535(tmp_path):
    # every value <= 255: the old data-dependent rule divided these by 255
    path = tmp_path / "dark.png"
    Image.fromarray(np.array([[0, 100, 255]], dtype=np.uint16)).save(path)
    assert Image.open(path).mode == "I;16"
    np.testing.assert_allclose(load_image(path)[0, 0].numpy(), [0, 100 / 65535, 255 / 65535],
                               rtol=1e-6)


def test_sixteen_bit_pgm_scales_by_its_maxval(tmp_path):
    path = tmp_path / "deep.pgm"  # maxval 1000: Pillow rescales to 16 bits, mode "I"
    path.write_bytes(b"P5\n2 1\n1000\n" + np.array([250, 1000], ">u2").tobytes())
    np.testing.assert_allclose(load_image(path)[0, 0].numpy(), [0.25, 1.0], atol=1e-4)


def test_signed_32_bit_tiff_scales_by_2_to_the_31(tmp_path):
    path = tmp_path / "signed.tif"
    values = [0, 2**30, 2**31 - 1]
    _tiff_with_sample_format(path, values, 2)
    np.testing.assert_allclose(load_image(path)[0, 0].numpy(), [0.0, 2**30 / (2**31 - 1), 1.0],
                               rtol=1e-6)
    _tiff_with_sample_format(path, [5, -3], 2)
    with pytest.raises(ImageError, match=r"signed.tif: signed 32-bit image holds negative"):
        load_image(path)


def test_unsigned_32_bit_tiff_reads_the_top_bit(tmp_path):
    path = tmp_path / "unsigned.tif"
    _tiff_with_sample_format(path, [0, -1, 2**31], 1)  # stored bits: 0, 2^32 - 1, 2^31
    np.testing.assert_allclose(load_image(path)[0, 0].numpy(),
                               [0.0, 1.0, 2**31 / (2**32 - 1)], rtol=1e-6)


def test_integer_pil_image_without_a_depth_is_16_bit():
    image = Image.new("I", (2, 1))
    image.putdata([0, 32768])
    np.testing.assert_allclose(load_image(image)[0, 0].numpy(), [0, 32768 / 65535], rtol=1e-6)
    image.putdata([0, 70000])
    with pytest.raises(ImageError, match="outside the 16-bit range"):
        load_image(image)


# --- file names and files that are not images -------------------------------------------------

def test_a_file_name_that_is_not_utf8_loads(tmp_path):
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes: Python holds them as a lone surrogate
    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(pixels).save(tmp_path / name, format="PNG")
    assert torch.equal(load_image(tmp_path / name)[0], torch.from_numpy(pixels / 255).float())
    (tmp_path / os.fsdecode(b"br\xf6ken.png")).write_text("no picture")
    with pytest.raises(ImageError, match=r"br\\xf6ken\.png is not an image") as caught:
        load_image(tmp_path / os.fsdecode(b"br\xf6ken.png"))
    str(caught.value).encode("utf-8")  # the message prints anywhere


def test_a_device_or_folder_is_not_an_image(tmp_path):
    with pytest.raises(ImageError, match="not a regular file"):
        load_image("/dev/zero")
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_an_unreadable_file_says_so(tmp_path):
    path = tmp_path / "locked.png"
    Image.new("L", (2, 2)).save(path)
    path.chmod(0)
    with pytest.raises(ImageError, match=r"cannot read .*locked\.png: Permission denied"):
        load_image(path)


# --------------------------------------------------------------------------- for a model's input


@pytest.mark.parametrize("size", [(5, 7), (20, 28), (10, 14)], ids=["shrink", "enlarge", "same"])
def test_resize_exact_is_pillows_bilinear_resize_of_the_same_floats(size):
    image = torch.rand(1, 10, 14)
    resized = resize_exact(image, size)
    assert resized.shape == (1, *size)
    if size == (10, 14):
        assert resized is image  # nothing to do
        return
    # oracle: Pillow's bilinear resize (antialiased when shrinking, as PyTorch's antialias)
    expected = np.asarray(Image.fromarray(image[0].numpy(), mode="F").resize(
        (size[1], size[0]), Image.Resampling.BILINEAR))
    np.testing.assert_allclose(resized[0].numpy(), expected.clip(0, 1), atol=1e-5)
    batch = resize_exact(torch.stack([image, image]), size)
    assert batch.shape == (2, 1, *size) and torch.equal(batch[1], resized)


def test_match_channels_converts_only_what_has_one_reading():
    rgb = torch.rand(3, 4, 4)
    luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    torch.testing.assert_close(match_channels(rgb, 1)[0], luma)
    assert torch.equal(match_channels(rgb[0], 3), rgb[:1].expand(3, -1, -1))  # (H, W) is gray
    with pytest.raises(ModelError, match="expects 3-channel images; this image has 2"):
        match_channels(torch.rand(2, 4, 4), 3)


def _torch_formula(values: np.ndarray, mode: str) -> np.ndarray:
    """What loading computed before the NumPy loader: the float32 values (integers / their
    type's maximum) as a ``(C, H, W)`` tensor, gray as torch's float32 weighted sum."""
    if values.ndim == 3 and values.shape[2] == 4:
        values = values[:, :, :3]
    if np.issubdtype(values.dtype, np.integer):
        scaled = values.astype(np.float32) / float(np.iinfo(values.dtype).max)
    else:
        scaled = values.astype(np.float32)
    tensor = torch.from_numpy(np.ascontiguousarray(scaled))
    tensor = tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)
    if mode == "gray" and tensor.shape[0] == 3:
        weights = torch.tensor((0.299, 0.587, 0.114), dtype=torch.float32).view(3, 1, 1)
        tensor = (tensor * weights).sum(dim=0, keepdim=True)
    elif mode == "rgb" and tensor.shape[0] == 1:
        tensor = tensor.expand(3, -1, -1)
    return tensor.contiguous().numpy()


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(["uint8", "uint16", "int32", "bool", "float32", "float64"]),
       st.sampled_from([None, 1, 3, 4]), st.sampled_from(["gray", "rgb"]),
       st.integers(1, 70), st.integers(1, 40), st.integers(0, 2**32 - 1))
def test_array_loader_keeps_the_numbers_of_the_torch_formula(dtype, channels, mode, height,
                                                             width, seed):
    """The NumPy loader (a block of rows at a time, 8-bit values through tables) gives the
    numbers the tensor formula gave, to float32 rounding, for every pixel type and layout
    (images taller than a block included), and ``load_image`` is that array as a tensor."""
    rng = np.random.default_rng(seed)
    shape = (height, width) if channels is None else (height, width, channels)
    if dtype == "bool":
        values = rng.random(shape) < 0.5
    elif dtype.startswith("float"):
        values = rng.random(shape).astype(dtype)
    else:
        values = rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)
    got = load_image_array(values, mode)
    expected = _torch_formula(values, mode)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=2e-7, atol=1e-7)
    np.testing.assert_array_equal(load_image(values, mode).numpy(), got)


def test_array_loader_of_8_bit_colour_is_bit_for_bit_the_old_gray(chelsea):
    """For 8-bit photos (the common case) the tables give exactly the float32 gray that
    scaling, weighting and adding in torch gave."""
    rgb = np.asarray(Image.open(chelsea).convert("RGB"))
    np.testing.assert_array_equal(load_image_array(rgb), _torch_formula(rgb, "gray"))
    np.testing.assert_array_equal(load_image_array(rgb, "rgb"), _torch_formula(rgb, "rgb"))


def test_array_loader_needs_no_torch(chelsea):
    import subprocess
    import sys

    code = ("import sys\n"
            "from convlens.images import load_image_array, sample_path\n"
            "image = load_image_array(sample_path())\n"
            "print(image.shape, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["(1,", "300,", "451)", "False"]
