"""Load any image as a ``(C, H, W)`` float32 array or tensor in [0, 1], gray (C=1) or RGB (C=3).

Sources: a path Pillow reads (JPEG, PNG, BMP, TIFF, WebP, GIF's first frame), a PIL image, a
NumPy array ``(H, W)`` / ``(H, W, C)`` or a tensor ``(H, W)`` / ``(C, H, W)``. EXIF orientation
is honoured, transparency is composited over white, and gray is ITU-R BT.601 luma computed in
float (0.299 R + 0.587 G + 0.114 B), not Pillow's rounded 8-bit ``convert("L")``.
:func:`load_image_array` loads without torch (``convlens run`` never imports it);
:func:`load_image` is the same numbers as a tensor sharing the array's memory.


Images and maps shown at a display size are shrunk by one whole factor, area-averaged
(:func:`downsample_for_display`), so one drawn pixel covers a known square of the original.
"""

from __future__ import annotations

import enum
import math
import stat
import warnings
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError, ModelError
from .outputs import printable

if TYPE_CHECKING:  # torch loads only where a tensor is made or resized
    import torch

BT601 = (0.299, 0.587, 0.114)
"""Luma weights for R, G, B (ITU-R BT.601)."""

DEFAULT_MAX_PIXELS = 120_000_000
"""Refuse images above this many pixels (decompression-bomb guard; 8000x6000 is 48 M)."""

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")
SAMPLES = ("chelsea", "coffee", "camera")
DEFAULT_SAMPLE = "chelsea"
BUNDLED_MODEL = "digits-cnn"
"""The folder under ``samples/`` of the small digits CNN that ships with convlens."""

ImageSource = Union[str, Path, Image.Image, np.ndarray, "torch.Tensor"]

_ROWS_PER_BLOCK = 32
"""Rows converted at a time: the block's values stay in cache between the passes over them."""


class ColorMode(str, enum.Enum):
    """How many channels the loaded image has: ``gray`` (1) or ``rgb`` (3)."""

    GRAY = "gray"
    RGB = "rgb"

    @property
    def channels(self) -> int:
        return 1 if self is ColorMode.GRAY else 3


def parse_mode(mode: str | ColorMode) -> ColorMode:
    """``"gray"``/``"rgb"`` (or a :class:`ColorMode`) -> :class:`ColorMode`, else a clear error."""
    try:
        return ColorMode(mode)
    except ValueError:
        raise ImageError(f"mode must be 'gray' or 'rgb'; got {mode!r}") from None


def sample_path(name: str = DEFAULT_SAMPLE) -> Path:
    """Path of a bundled CC0 sample photo (``chelsea``, ``coffee`` or ``camera``)."""
    if name not in SAMPLES:
        raise ImageError(f"unknown sample {name!r}; the bundled samples are {', '.join(SAMPLES)}")
    return Path(str(resources.files("convlens") / "samples" / f"{name}.png"))


def bundled_model_path() -> Path:
    """Path of the ``model.safetensors`` of the digits CNN that ships with convlens (8x8 gray
    digits, classes ``0``-``9``; ``model.json`` and ``metrics.json`` lie beside it, with its
    accuracy on a held-out test split). ``scripts/build_bundled_model.py`` rebuilds it bit for
    bit; ``convlens serve`` opens on it.

    >>> bundled_model_path().parent.name
    'digits-cnn'
    """
    return Path(str(resources.files("convlens") / "samples" / BUNDLED_MODEL / "model.safetensors"))


def load_image(
    source: ImageSource,
    mode: str | ColorMode = ColorMode.GRAY,
    max_side: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> torch.Tensor:
    """Load ``source`` as a float32 tensor of shape ``(C, H, W)`` with values in [0, 1]: the
    array of :func:`load_image_array` (see there), sharing its memory.

    >>> load_image(np.full((2, 3), 255, dtype=np.uint8)).shape
    torch.Size([1, 2, 3])
    """
    import torch

    return torch.from_numpy(load_image_array(source, mode, max_side, max_pixels))


def load_image_array(
    source: ImageSource,
    mode: str | ColorMode = ColorMode.GRAY,
    max_side: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Load ``source`` as a C-contiguous float32 array ``(C, H, W)`` with values in [0, 1].

    ``mode`` picks gray (C=1, BT.601 luma) or rgb (C=3). ``max_side`` (pixels), if given,
    shrinks the image with antialiasing so that its longer side is at most that; it never
    enlarges (shrinking imports torch: its antialiased bilinear resize is the one used
    everywhere).

    Values are scaled to [0, 1] by what the pixels are: integer arrays by their type's maximum
    (255 for uint8, 65535 for uint16, ...); float arrays are taken as they are and must lie in
    [0, 1]. Files, by Pillow mode: 8-bit modes (``1``, ``L``, ``P``, ``RGB``, ``RGBA``,
    ``CMYK``, ...) / 255; 16-bit (``I;16``: 16-bit PNG, TIFF, PGM) / 65535; 32-bit integer
    (``I``) by the bit depth the TIFF states (unsigned N bits / (2^N - 1), signed /
    (2^(N-1) - 1), negative values refused) and as 16-bit without one; float (``F``: float
    TIFF) at their real values, which must lie in [0, 1]. 16-bit RGB PNGs reach Pillow as 8-bit.

    >>> load_image_array(np.full((2, 3), 255, dtype=np.uint8)).shape
    (1, 2, 3)
    """
    color = parse_mode(mode)
    if isinstance(source, (str, Path)):
        array = _read_file(Path(source), max_pixels)
    elif isinstance(source, Image.Image):
        array = _pil_to_array(source)
    elif isinstance(source, np.ndarray):
        array = source
    elif hasattr(source, "detach"):  # a tensor
        array = _tensor_to_array(source)
    else:
        raise ImageError(
            f"expected a path, PIL image, NumPy array or tensor; got {type(source).__name__}"
        )
    image = _array_to_mode(array, color)
    if max_side is not None:
        if max_side < 1:
            raise ImageError(f"max_side must be a positive number of pixels; got {max_side}")
        if max(image.shape[-2:]) > max_side:
            import torch

            image = resize_max_side(torch.from_numpy(image), max_side).numpy()
    return np.ascontiguousarray(image)


def resize_max_side(image: torch.Tensor, max_side: int) -> torch.Tensor:
    """Shrink ``image`` ``(C, H, W)`` so its longer side is ``max_side`` px (antialiased)."""
    if max_side < 1:
        raise ImageError(f"max_side must be a positive number of pixels; got {max_side}")
    height, width = image.shape[-2:]
    longer = max(height, width)
    if longer <= max_side:
        return image
    scale = max_side / longer
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return _bilinear(image[None], size, antialias=True)[0].clamp_(0.0, 1.0)


def to_gray(image: torch.Tensor) -> torch.Tensor:
    """RGB ``(3, H, W)`` -> luma ``(1, H, W)`` with the BT.601 weights; gray passes through."""
    if image.shape[0] == 1:
        return image
    if image.shape[0] != 3:
        raise ImageError(f"expected 1 or 3 channels; got {image.shape[0]}")
    import torch

    weights = torch.tensor(BT601, dtype=image.dtype, device=image.device).view(3, 1, 1)
    return (image * weights).sum(dim=0, keepdim=True)


def match_channels(image: torch.Tensor, channels: int) -> torch.Tensor:
    """Image ``(C, H, W)`` (or ``(H, W)``) -> ``(channels, H, W)`` for a model that takes
    ``channels``: RGB to gray by BT.601 luma, gray to RGB by repeating, RGBA loses alpha;
    anything ambiguous raises :class:`~convlens.errors.ModelError`."""
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3:
        raise ModelError(f"expected an image (C, H, W); got shape {tuple(image.shape)}")
    have = image.shape[0]
    if have == 4:
        image, have = image[:3], 3
    if have == channels:
        return image
    if have == 3 and channels == 1:
        return to_gray(image)
    if have == 1 and channels == 3:
        return image.expand(3, -1, -1)
    raise ModelError(f"the model expects {channels}-channel images; this image has {have} "
                     "channels and there is no unambiguous conversion")


def resize_exact(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize ``(C, H, W)`` or ``(N, C, H, W)`` to ``size`` (H, W) pixels: antialiased
    bilinear when shrinking, bilinear when enlarging, values kept in [0, 1]; the same size is
    returned unchanged."""
    size = (int(size[0]), int(size[1]))
    if tuple(image.shape[-2:]) == size:
        return image
    batch = image if image.ndim == 4 else image[None]
    shrinking = batch.shape[-2] > size[0] or batch.shape[-1] > size[1]
    out = _bilinear(batch.float(), size, antialias=shrinking).clamp_(0.0, 1.0)
    return out if image.ndim == 4 else out[0]


def _bilinear(batch: torch.Tensor, size: tuple[int, int], antialias: bool) -> torch.Tensor:
    """Bilinear resize of ``(N, C, H, W)`` to ``size`` (H, W), antialiased if asked. PyTorch's
    antialiased kernel gets an output one pixel wide and several tall wrong (torch 2.13 on the
    CPU: up to 0.4 off on [0, 1] images; one pixel tall is right), so that output is computed
    transposed."""
    import torch.nn.functional as F

    if antialias and size[1] == 1 and size[0] > 1:
        flipped = F.interpolate(batch.transpose(-1, -2), size=(size[1], size[0]),
                                mode="bilinear", align_corners=False, antialias=True)
        return flipped.transpose(-1, -2).contiguous()
    return F.interpolate(batch, size=size, mode="bilinear", align_corners=False,
                         antialias=antialias)


def display_factor(shape: tuple[int, ...], max_side: int) -> int:
    """The whole factor :func:`downsample_for_display` shrinks a map of ``shape`` (``(..., H,
    W)``) by, so its longer side is <= ``max_side``: one drawn pixel covers factor x factor."""
    return max(1, math.ceil(max(shape[-2:]) / max_side))


def downsample_for_display(data: np.ndarray, max_side: int) -> tuple[np.ndarray, int]:
    """Area-average ``(..., H, W)`` by a whole factor so its longer side is <= ``max_side``
    pixels (an image or maps at the size they are drawn); returns the maps and the factor."""
    factor = display_factor(data.shape, max_side)
    if factor == 1:
        return data, 1
    # F.avg_pool2d(..., ceil_mode=True) as strided sums: 4x faster (the page's edits spend most
    # of their time here); a window cut by the edge is the mean of the cells it holds
    data = np.asarray(data, dtype=np.float32)
    height, width = data.shape[-2:]
    rows, cols = -(-height // factor), -(-width // factor)
    summed = np.zeros((*data.shape[:-2], rows, width), np.float32)
    for offset in range(factor):
        part = data[..., offset::factor, :]
        summed[..., :part.shape[-2], :] += part
    pooled = np.zeros((*data.shape[:-2], rows, cols), np.float32)
    for offset in range(factor):
        part = summed[..., offset::factor]
        pooled[..., :part.shape[-1]] += part
    counts = np.minimum(factor, height - np.arange(rows) * factor)[:, None] * np.minimum(
        factor, width - np.arange(cols) * factor)[None, :]
    pooled /= counts.astype(np.float32)
    return pooled, factor


def iter_image_files(paths: list[Path], recursive: bool = False) -> Iterator[Path]:
    """Expand files and folders (sorted; with ``recursive``, the folders inside too) into the
    image files to process. Without ``recursive`` an entry named like an image is listed even
    when it is a folder, so that a batch reports it instead of passing over it in silence; with
    ``recursive`` such a folder is searched instead."""
    for path in paths:
        if path.is_dir():
            try:
                found = sorted(p for p in (path.rglob("*") if recursive else path.iterdir())
                               if p.suffix.lower() in IMAGE_SUFFIXES
                               and not (recursive and p.is_dir()))
            except OSError as exc:
                raise ImageError(f"cannot read folder {printable(path)}: "
                                 f"{exc.strerror or exc}") from None
            if not found:
                raise ImageError(f"folder {printable(path)} holds no images (looked for "
                                 f"{', '.join(IMAGE_SUFFIXES)})")
            yield from found
        else:
            yield path


def _read_file(path: Path, max_pixels: int) -> np.ndarray:
    shown = printable(path)
    try:
        kind = path.stat().st_mode
        if stat.S_ISDIR(kind):
            raise ImageError(f"{shown} is a folder, not an image file")
        if not (stat.S_ISREG(kind) or stat.S_ISFIFO(kind)):
            raise ImageError(f"{shown} is not a regular file (a device or socket), not an image")
        stream = open(path, "rb")  # noqa: SIM115 - closed below, after Pillow is done
    except FileNotFoundError:
        raise ImageError(f"no such file: {shown}") from None
    except OSError as exc:
        raise ImageError(f"cannot read {shown}: {exc.strerror or exc}") from None
    try:
        with stream, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(stream) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise ImageError(
                        f"{shown} is {width}x{height} px (width x height) = "
                        f"{width * height / 1e6:.0f} Mpx, over "
                        f"the {max_pixels / 1e6:.0f} Mpx limit (possible decompression bomb)"
                    )
                img.seek(0)
                img.load()
                return _pil_to_array(img)
    except ImageError as exc:
        if shown in str(exc):
            raise
        raise ImageError(f"{shown}: {exc}") from None
    except UnidentifiedImageError:
        raise ImageError(f"{shown} is not an image Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{shown} is too large to decode safely (decompression bomb)") from None
    except MemoryError:
        raise ImageError(f"{shown} is too large to decode in memory") from None
    except Exception as exc:  # any failure of a decoder means a bad file, not a bug here
        detail = printable(str(exc) or type(exc).__name__)
        raise ImageError(f"{shown} could not be decoded ({detail}); is it truncated or "
                         "damaged?") from None


def _pil_to_array(img: Image.Image) -> np.ndarray:
    """Pixel values of a PIL image as an array _array_to_mode scales to [0, 1] (see
    :func:`load_image` for each mode's scale)."""
    depth = _integer_depth(img) if img.mode == "I" else None
    img = ImageOps.exif_transpose(img) or img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(img).astype(np.uint16)
    if img.mode == "I":
        return _scaled_integers(np.asarray(img, dtype=np.int32), depth)
    if img.mode == "F":
        values = np.asarray(img, dtype=np.float32)
        if not np.isfinite(values).all():
            raise ImageError("float image holds NaN or infinite values")
        low, high = float(values.min()), float(values.max())
        if low < 0.0 or high > 1.0:
            raise ImageError(f"float image values run from {low:.4g} to {high:.4g}; a float "
                             "image is read at its real values, which must lie in [0, 1]")
        return values
    if img.mode in ("1", "L"):
        return np.asarray(img.convert("L"))
    if img.mode == "LA" or img.mode in ("RGBA", "PA", "P", "La", "RGBa"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    return np.asarray(img if img.mode == "RGB" else img.convert("RGB"))  # no copy to convert


def _integer_depth(img: Image.Image) -> tuple[int, bool] | None:
    """(bits, signed) a TIFF states for its 32-bit-integer ("I") pixels, else None."""
    tags = getattr(img, "tag_v2", None)
    if tags is None:
        return None
    try:
        bits = int(tags.get(258, (32,))[0])
        signed = int(tags.get(339, (1,))[0]) == 2
    except (TypeError, ValueError, IndexError):
        return None
    return (bits, signed) if 1 <= bits <= 32 else None


def _scaled_integers(values: np.ndarray, depth: tuple[int, bool] | None) -> np.ndarray:
    """Integer pixels of Pillow's mode "I" in [0, 1]: by the stated bit depth (unsigned N bits
    / (2^N - 1), signed / (2^(N-1) - 1)), or, with none stated, as 16-bit values / 65535."""
    if depth is None:
        low, high = int(values.min()), int(values.max())
        if low < 0 or high > 65535:
            raise ImageError(f"integer pixel values run from {low} to {high}, outside the 16-bit "
                             "range 0-65535 an integer image without a stated bit depth is read "
                             "in; pass a NumPy array of its real integer type")
        return (values / 65535.0).astype(np.float32)
    bits, signed = depth
    if not signed and bits == 32:
        values = values.view(np.uint32)  # Pillow keeps unsigned 32-bit pixels in int32
    if signed and int(values.min()) < 0:
        raise ImageError(f"signed {bits}-bit image holds negative values (down to "
                         f"{int(values.min())}); image values must start at 0")
    top = 2.0 ** (bits - 1 if signed else bits) - 1
    return np.clip(values / top, 0.0, 1.0).astype(np.float32)


def _tensor_to_array(tensor: torch.Tensor) -> np.ndarray:
    data = tensor.detach().to("cpu")
    if data.ndim == 4 and data.shape[0] == 1:
        data = data[0]
    if data.ndim == 3 and data.shape[0] in (1, 3, 4):
        data = data.permute(1, 2, 0)
    return data.numpy()


def _array_to_mode(array: np.ndarray, mode: ColorMode) -> np.ndarray:
    """An image array ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` (alpha dropped)
    as float32 ``(C, H, W)`` in [0, 1] in ``mode``: gray is BT.601 luma, rgb repeats a gray
    image's channel.

    The values are those of scaling to float32 first (integers / their type's maximum) and then
    weighting each channel in float32 and adding them in order, computed a block of rows at a
    time (8-bit pixels through a table per channel), so no float copy of the whole colour image
    is made."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ImageError(f"expected an image array (H, W) or (H, W, 3); got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageError(f"image is empty (shape {array.shape})")
    if np.issubdtype(array.dtype, np.floating) and array.dtype != np.float32:
        array = array.astype(np.float32)  # checked and used as float32, as it is drawn
    scale = _scaler(array)
    height, width = array.shape[:2]
    if array.ndim == 2:
        gray = scale(array)[None]
        if mode is ColorMode.RGB:
            return np.ascontiguousarray(np.broadcast_to(gray, (3, height, width)))
        return gray
    if mode is ColorMode.RGB:
        out = np.empty((3, height, width), np.float32)
        for channel in range(3):
            out[channel] = scale(array[:, :, channel])
        return out
    weights = [np.float32(w) for w in BT601]
    gray = np.empty((1, height, width), np.float32)
    part = np.empty((min(_ROWS_PER_BLOCK, height), width), np.float32)
    for top in range(0, height, _ROWS_PER_BLOCK):
        rows = array[top:top + _ROWS_PER_BLOCK]
        out = gray[0, top:top + _ROWS_PER_BLOCK]
        scratch = part[:out.shape[0]]
        for channel, weight in enumerate(weights):
            scale(rows[:, :, channel], weight, scratch if channel else out)
            if channel:
                out += scratch
    return gray


def _scaler(array: np.ndarray):
    """``scale(values, weight=1, out=None)``: the float32 values of part of ``array`` in
    [0, 1] times ``weight`` (float32 ``v / max`` first, then the product), for the whole
    array's dtype; float arrays are checked to be finite and in [0, 1] once, here."""
    if np.issubdtype(array.dtype, np.bool_):
        table = np.array([0.0, 1.0], np.float32)
        return _table_scaler(table, np.uint8)
    if array.dtype == np.uint8:
        return _table_scaler(np.arange(256, dtype=np.float32) / np.float32(255.0), None)
    if np.issubdtype(array.dtype, np.integer):
        top = float(np.iinfo(array.dtype).max)

        def scale_integers(values, weight=None, out=None):
            scaled = values.astype(np.float32) / top
            return _weighted(scaled, weight, out)

        return scale_integers
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ImageError("image array holds NaN or infinite values")
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise ImageError(
                f"float image values must lie in [0, 1]; got [{low:.4g}, {high:.4g}] "
                "(pass uint8 data, or divide by 255)"
            )

        def scale_floats(values, weight=None, out=None):
            return _weighted(values.astype(np.float32), weight, out)

        return scale_floats
    raise ImageError(f"unsupported image array dtype {array.dtype}")


def _table_scaler(table: np.ndarray, view: type | None):
    """A scaler for small integer pixels: each value's float32 (times the weight) looked up in
    ``table``."""
    tables: dict[object, np.ndarray] = {}

    def scale(values, weight=None, out=None):
        key = None if weight is None else float(weight)
        if key not in tables:
            tables[key] = table if weight is None else table * weight
        index = values.view(np.uint8) if view is not None else values
        if out is None:
            return np.take(tables[key], index)
        return np.take(tables[key], index, out=out)

    return scale


def _weighted(values: np.ndarray, weight, out):
    if weight is not None:
        values = np.multiply(values, weight, out=values)
    if out is None:
        return values
    np.copyto(out, values)
    return out
