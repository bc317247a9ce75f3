"""Option types shared by the commands that build a layer (run, explain, ...), declared once."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..defaults import DEFAULT_MAX_SIDE
from ..limits import MAX_KERNEL_SIDE

if TYPE_CHECKING:  # the library loads when a command runs, not for --help
    from ..config import LayerConfig
    from ..kernels import Kernel

DEFAULT_ROOT = Path("convlens-out")
"""Parent of the result folders commands create when no ``--out`` is given."""

LAYER = "Layer"
IMAGE = "Image"

KernelNames = Annotated[
    str | None,
    typer.Option("--kernels", help="Comma list of built-in kernel names, e.g. "
                 "`sobel-h,laplacian,sobel-v` (see `convlens kernels`).", rich_help_panel=LAYER),
]
KernelSpecs = Annotated[
    list[str] | None,
    typer.Option("--kernel", "-k", help="A kernel: built-in name, inline rows `\"1 0 -1; 2 0 -2; "
                 "1 0 -1\"`, JSON list, or a .npy/.json/.txt/.csv file (text: a row per line, "
                 f"`#` comments ignored); up to {MAX_KERNEL_SIDE}x{MAX_KERNEL_SIDE}. Repeatable.",
                 rich_help_panel=LAYER),
]
Mode = Annotated[str, typer.Option("--mode", help="Load the image as `gray` (BT.601 luma) or "
                                   "`rgb`.", rich_help_panel=IMAGE)]
MaxSide = Annotated[int | None, typer.Option("--max-side", help="Shrink the image so its "
                    "longer side is at most this many pixels; default: "
                    + ("full size, as the page computes unless a photo is over its working "
                       "budget" if DEFAULT_MAX_SIDE is None else f"{DEFAULT_MAX_SIDE}") + ".",
                    rich_help_panel=IMAGE)]
Stride = Annotated[int, typer.Option("--stride", help="Step of the kernel, in pixels.",
                                     rich_help_panel=LAYER)]
Padding = Annotated[str, typer.Option("--padding", help="Cells added on each side: a number, "
                    "`valid` (0) or `same` (output = ceil(input / stride)).",
                    rich_help_panel=LAYER)]
PaddingModeOpt = Annotated[str, typer.Option("--padding-mode", help="What the padded cells "
                           "hold: `zeros`, `reflect`, `replicate` or `circular`.",
                           rich_help_panel=LAYER)]
Dilation = Annotated[int, typer.Option("--dilation", help="Gap between kernel taps (1 = none).",
                                       rich_help_panel=LAYER)]
ActivationOpt = Annotated[str, typer.Option("--activation", help="`relu`, `leaky-relu`, `tanh`, "
                          "`sigmoid`, `abs` or `none`.", rich_help_panel=LAYER)]
Pool = Annotated[str, typer.Option("--pool", help="Pooling window size, or `none`.",
                                   rich_help_panel=LAYER)]
PoolTypeOpt = Annotated[str, typer.Option("--pool-type", help="`max` or `avg`.",
                                          rich_help_panel=LAYER)]
PoolStride = Annotated[int | None, typer.Option("--pool-stride", help="Pooling step "
                       "(default: the window size).", rich_help_panel=LAYER)]
Device = Annotated[str, typer.Option("--device", help="`auto` (CUDA if present, then MPS, "
                                     "then CPU), `cpu`, `cuda` or `mps`.")]
OutDir = Annotated[Path | None, typer.Option("--out", "-o", help="Result folder (for several "
                   "images: the parent of one folder per image).")]
Force = Annotated[bool, typer.Option("--force", help="Reuse a non-empty result folder, "
                                     "overwriting its files.")]


def choose_kernels(names: str | None, specs: list[str] | None) -> list[Kernel]:
    """``--kernels`` names then ``--kernel`` specs; the tutorial's three when neither is given."""
    from ..kernels import TUTORIAL_KERNELS, parse_kernels, split_names

    items = [*(split_names(names) if names else []), *(specs or [])]
    return parse_kernels(items or list(TUTORIAL_KERNELS))


def layer_config(
    stride: int, padding: str, padding_mode: str, dilation: int, activation: str,
    pool: str, pool_type: str, pool_stride: int | None,
) -> LayerConfig:
    """The :class:`LayerConfig` the layer flags describe (validated by the library)."""
    from ..config import Activation, LayerConfig, PaddingMode, PoolType, parse_enum, parse_pool

    return LayerConfig(stride=stride, padding=padding,
                       padding_mode=parse_enum(PaddingMode, padding_mode, "padding mode"),
                       dilation=dilation,
                       activation=parse_enum(Activation, activation, "activation"),
                       pool=parse_pool(pool),
                       pool_type=parse_enum(PoolType, pool_type, "pool type"),
                       pool_stride=pool_stride)
