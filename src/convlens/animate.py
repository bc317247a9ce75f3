"""A kernel sliding over a small input, as a GIF (or MP4 where a video writer is installed).

:func:`build_slide` works out every step on the user's own numbers (or a crop of their image,
rounded to whole 0-255 values so the sums can be checked by hand) with the same arithmetic as
:func:`convlens.explain.explain_pixel`; :func:`render_frames` draws one frame per output cell;
:func:`write_animation` saves them. Sizes are bounded (:data:`MAX_PADDED_SIDE`,
:data:`MAX_FRAMES`) so an animation cannot run away.
"""

from __future__ import annotations

import importlib.util
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .config import Activation, LayerConfig
from .defaults import DEFAULT_CROP, DEFAULT_FRAMES, SCREEN_DPI
from .errors import ConfigError
from .explain import explain_pixel
from .limits import MAX_ANIMATED_KERNEL_SIDE
from .outputs import check_out_file, printable, write_file
from .reference import pad_input
from .sizes import check_fits, resolve_padding

MAX_PADDED_SIDE = 20
"""Largest side of the padded input, in cells (each cell is drawn with its number)."""
MAX_FRAMES = 400
MAX_FPS = 30
FINAL_HOLD = 4
"""The finished frame stays this many frame times."""


@dataclass
class SlideStep:
    """One output cell: where the taps land (padded-grid coordinates) and the sum written out."""

    row: int
    col: int
    tap_rows: list[int]
    tap_cols: list[int]
    total: float
    lines: list[str]


@dataclass
class Slide:
    """Everything one animation shows. ``values`` ``(H, W)`` are the input numbers, ``padded``
    ``(H + top + bottom, W + left + right)`` with ``pad_mask`` marking padding, ``output``
    ``(H', W')`` the conv result, ``steps`` one per output cell in row-major order."""

    values: np.ndarray
    kernel: np.ndarray
    config: LayerConfig
    pads: tuple[int, int, int, int]
    padded: np.ndarray
    pad_mask: np.ndarray
    output: np.ndarray
    steps: list[SlideStep]

    def step_text(self, index: int, width: int = 100) -> str:
        """Step ``index``'s sum written out, wrapped to ``width`` characters (at most 4 lines;
        long sums keep only the row sums)."""
        item = self.steps[index]
        return _sum_text(item.row, item.col, item.lines, width)

    def heading(self) -> str:
        c = self.config
        pads = self.pads
        padding = str(pads[0]) if len(set(pads)) == 1 else ",".join(map(str, pads))
        return (f"{self.kernel.shape[0]}x{self.kernel.shape[1]} kernel, stride {c.stride}, "
                f"padding {padding}" + (f", dilation {c.dilation}" if c.dilation > 1 else ""))


def build_slide(values: np.ndarray, kernel: np.ndarray, config: LayerConfig) -> Slide:
    """Every step of ``kernel`` ``(kh, kw)`` sliding over ``values`` ``(H, W)`` (any numbers).

    Only stride, padding, padding mode and dilation of ``config`` apply: the animation shows
    the conv stage (no activation, no pooling). Inputs over :data:`MAX_PADDED_SIDE` cells a
    side (padding included) or kernels over
    :data:`~convlens.limits.MAX_ANIMATED_KERNEL_SIDE` cells raise :class:`ConfigError`.
    """
    values = np.asarray(values, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    if values.ndim != 2 or values.size == 0:
        raise ConfigError(f"the animation input must be a 2-D grid of numbers; got {values.shape}")
    if kernel.ndim != 2:
        raise ConfigError("the animation slides one gray (2-D) kernel; got an RGB kernel")
    if max(kernel.shape) > MAX_ANIMATED_KERNEL_SIDE:
        raise ConfigError(f"kernel {kernel.shape[0]}x{kernel.shape[1]} is too large to animate "
                          f"(at most {MAX_ANIMATED_KERNEL_SIDE}x{MAX_ANIMATED_KERNEL_SIDE})")
    if not np.isfinite(values).all():
        raise ConfigError("the animation input holds NaN or infinite values")
    config = LayerConfig(stride=config.stride, padding=config.padding,
                         padding_mode=config.padding_mode, dilation=config.dilation,
                         activation=Activation.NONE, pool=None)
    height, width = values.shape
    kernel_size = (kernel.shape[0], kernel.shape[1])
    pads = resolve_padding(config, height, width, kernel_size)
    padded_h, padded_w = height + pads[0] + pads[1], width + pads[2] + pads[3]
    if max(padded_h, padded_w) > MAX_PADDED_SIDE:
        raise ConfigError(
            f"the padded input is {padded_h}x{padded_w} cells; animations take at most "
            f"{MAX_PADDED_SIDE} a side (use a smaller crop or less padding)"
        )
    check_fits(config, height, width, kernel_size)
    image = torch.from_numpy(values)[None]
    weights = torch.from_numpy(kernel)[None, None]
    padded = pad_input(image[None], pads, config.padding_mode)[0, 0].numpy()
    pad_mask = np.ones((padded_h, padded_w), dtype=bool)
    pad_mask[pads[0]: pads[0] + height, pads[2]: pads[2] + width] = False
    steps = []
    first = explain_pixel(image, weights, config, 0, 0, 0, scale=1.0)
    output = np.zeros(first.conv_shape)
    for row in range(first.conv_shape[0]):
        for col in range(first.conv_shape[1]):
            e = explain_pixel(image, weights, config, 0, row, col, scale=1.0)
            output[row, col] = e.total
            steps.append(SlideStep(
                row, col, [r + pads[0] for r in e.input_rows], [c + pads[2] for c in e.input_cols],
                e.total, e.sum_lines(),
            ))
    return Slide(values, kernel, config, pads, padded, pad_mask, output, steps)


def crop_values(image: torch.Tensor, top_left: tuple[int, int] | None = None,
                size: tuple[int, int] = (DEFAULT_CROP, DEFAULT_CROP)) -> np.ndarray:
    """A ``size`` crop of a gray image ``(1, H, W)`` as whole 0-255 numbers.

    ``top_left`` defaults to the centre of the image. Rounding keeps every sum checkable by
    hand; the crop must lie inside the image.
    """
    if image.ndim != 3 or image.shape[0] != 1:
        raise ConfigError(f"animate crops a gray image (1, H, W); got {tuple(image.shape)}")
    height, width = image.shape[1:]
    crop_h, crop_w = size
    if crop_h < 1 or crop_w < 1:
        raise ConfigError(f"crop size must be at least 1x1; got {crop_h}x{crop_w}")
    if top_left is None:
        top_left = (max(0, (height - crop_h) // 2), max(0, (width - crop_w) // 2))
    top, left = top_left
    if not (top >= 0 and top + crop_h <= height and left >= 0 and left + crop_w <= width):
        raise ConfigError(
            f"a {crop_h}x{crop_w} crop at ({top}, {left}) does not fit the {height}x{width} "
            f"image: top must be 0..{height - crop_h} and left 0..{width - crop_w}"
        )
    crop = image[0, top: top + crop_h, left: left + crop_w].detach().cpu().double().numpy()
    return np.round(crop * 255.0)


def render_frames(
    slide: Slide, max_frames: int = DEFAULT_FRAMES, dpi: int = SCREEN_DPI,
    progress: Callable[[int, int], None] | None = None,
) -> list[Image.Image]:
    """One RGB frame per output cell (at most ``max_frames - 1`` of them), then the finished
    output. ``progress(done, total)`` is called after each frame."""
    from .plot.explain import SlideFigure

    _check_frames(max_frames)
    count = min(len(slide.steps), max_frames - 1)
    drawer = SlideFigure(slide, dpi=dpi)
    frames = []
    for index in [*range(count), None]:
        frames.append(Image.fromarray(drawer.show(index)))
        if progress is not None:
            progress(len(frames), count + 1)
    return frames


def write_animation(
    frames: list[Image.Image], path: Path, fps: float = 2.0, force: bool = False
) -> Path:
    """Save ``frames`` as a GIF (Pillow) or MP4 (needs imageio with ffmpeg or PyAV).

    The last frame is held :data:`FINAL_HOLD` frame times. An existing file is only replaced
    with ``force``; the file is written under a temporary name and renamed when complete, so
    an error leaves nothing (:mod:`convlens.outputs`).
    """
    path = Path(path)
    if not frames:
        raise ConfigError("no frames to write")
    if not (0 < fps <= MAX_FPS):
        raise ConfigError(f"fps must be more than 0 and at most {MAX_FPS}; got {fps}")
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ConfigError("the animation file must end in .gif or .mp4; got "
                          f"{printable(path.name)!r}")
    check_out_file(path, force)
    if suffix == ".mp4":
        return _write_mp4(frames, path, fps)
    frame_ms = round(1000 / fps)
    durations = [frame_ms] * (len(frames) - 1) + [frame_ms * FINAL_HOLD]
    palette = [frame.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
               for frame in frames]
    return write_file(path, lambda target: palette[0].save(
        target, save_all=True, append_images=palette[1:], duration=durations, loop=0,
        optimize=False, disposal=1))


def mp4_available() -> bool:
    """Whether imageio can write MP4 here (it needs imageio-ffmpeg or PyAV)."""
    return importlib.util.find_spec("imageio") is not None and (
        importlib.util.find_spec("imageio_ffmpeg") is not None
        or importlib.util.find_spec("av") is not None
    )


def _write_mp4(frames: list[Image.Image], path: Path, fps: float) -> Path:
    if not mp4_available():
        raise ConfigError("writing MP4 needs imageio with imageio-ffmpeg or PyAV "
                          "(pip install imageio-ffmpeg); a .gif works without them")
    import imageio.v3 as iio

    hold = [frames[-1]] * (FINAL_HOLD - 1)
    arrays = [np.asarray(frame.convert("RGB")) for frame in [*frames, *hold]]
    # video codecs want sides in multiples of 16: pad with white rather than let them resize
    height, width = arrays[0].shape[:2]
    stack = np.full((len(arrays), -(-height // 16) * 16, -(-width // 16) * 16, 3), 255,
                    dtype=np.uint8)
    for index, array in enumerate(arrays):
        stack[index, :height, :width] = array
    return write_file(path, lambda target: iio.imwrite(target, stack, fps=fps))


def _check_frames(max_frames: int) -> None:
    if isinstance(max_frames, bool) or not isinstance(max_frames, int) or not (
        2 <= max_frames <= MAX_FRAMES
    ):
        raise ConfigError(f"frames must be 2..{MAX_FRAMES} (one per output cell plus the "
                          f"finished output); got {max_frames!r}")


def _sum_text(row: int, col: int, lines: list[str], width: int = 104) -> str:
    """``out[r, c] = (a×w + ...)`` then ``= row sums`` and ``= total`` on lines of their own,
    wrapped to ``width``; a sum too long for 5 lines keeps only the row sums and the total."""
    head = f"out[{row}, {col}] = "
    indent = " " * (len(head) - 2)
    for chosen in (lines, lines[1:], lines[-1:]):
        parts = []
        for index, line in enumerate(chosen):
            first = head if index == 0 else indent + "= "
            parts.append(textwrap.fill(line, width, initial_indent=first,
                                       subsequent_indent=" " * len(head),
                                       break_on_hyphens=False))
        text = "\n".join(parts)
        if text.count("\n") < 5:
            return text
    return head + lines[-1]


__all__ = [
    "DEFAULT_FRAMES",
    "MAX_FRAMES",
    "MAX_PADDED_SIDE",
    "Slide",
    "SlideStep",
    "build_slide",
    "crop_values",
    "mp4_available",
    "render_frames",
    "write_animation",
]
