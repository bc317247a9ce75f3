"""``convlens explain``, ``convlens size`` and ``convlens animate``: the arithmetic, shown."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Group
from rich.markup import escape
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from ..defaults import DEFAULT_CROP, DEFAULT_FRAMES, DEFAULT_MAX_SIDE
from ..errors import ConfigError
from ..outputs import check_out_file, printable
from . import _options as opt
from ._app import CONVOLUTION_COMMANDS, app, console, error_console, fits

if TYPE_CHECKING:  # the library (and NumPy) loads when a command runs, not for --help
    import numpy as np

    from ..explain import PixelExplanation, PooledExplanation
    from ..explain.parts import Part
    from ..explain.parts import Table as TablePart
    from ..explain.parts import TextTable as TextPart
    from ..sizes import SizeChain

FIGURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".svg")
PAD_STYLE = "italic magenta"
WIN_STYLE = "bold green"

At = Annotated[str | None, typer.Option(
    "--at", help="ROW,COL of the conv output pixel to explain (0-based, as in stages.npz). "
    "Default: the centre of the conv map.", show_default=False)]
PooledAt = Annotated[str | None, typer.Option(
    "--pooled-at", help="ROW,COL of a pooled cell to explain: its window, values and winner.",
    show_default=False)]
PatchOpt = Annotated[str | None, typer.Option(
    "--patch", help="Explain a patch you type instead of an image: raw 0-255 pixel values, "
    "rows split by `;` (channels by `|`), the kernel's size, e.g. `\"88 126 145; 86 125 142; "
    "85 124 141\"`. convlens divides them by 255 as it does an image's.", show_default=False)]
Flip = Annotated[bool, typer.Option(
    "--flip", help="Also show true convolution (the kernel turned 180 degrees), as "
    "scipy.ndimage.convolve computes it, beside PyTorch's cross-correlation.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object per explanation "
                                      "(a list when there are several) instead of tables.")]
FigureOpt = Annotated[Path | None, typer.Option(
    "--figure", help="Also draw the explanation: patch, kernel and products with their numbers "
    "(png, jpg, pdf or svg).", show_default=False)]
ForceFile = Annotated[bool, typer.Option("--force", help="Overwrite an existing output file.")]


# --------------------------------------------------------------------------- explain


@app.command(rich_help_panel=CONVOLUTION_COMMANDS)
def explain(
    ctx: typer.Context,
    image: Annotated[Path | None, typer.Argument(
        help="Image file (default: the bundled cat photo).", show_default=False)] = None,
    at: At = None,
    pooled_at: PooledAt = None,
    patch: PatchOpt = None,
    flip: Flip = False,
    as_json: AsJson = False,
    figure: FigureOpt = None,
    force: ForceFile = False,
    kernels: opt.KernelNames = None,
    kernel: opt.KernelSpecs = None,
    mode: opt.Mode = "gray",
    stride: opt.Stride = 1,
    padding: opt.Padding = "0",
    padding_mode: opt.PaddingModeOpt = "zeros",
    dilation: opt.Dilation = 1,
    activation: opt.ActivationOpt = "relu",
    pool: opt.Pool = "2",
    pool_type: opt.PoolTypeOpt = "max",
    pool_stride: opt.PoolStride = None,
    max_side: opt.MaxSide = DEFAULT_MAX_SIDE,
) -> None:
    """Work out one number of a run by hand: a conv pixel or a pooled cell.

    Takes the same image and layer flags as `convlens run`. For a conv output pixel (`--at`)
    it prints where the kernel lies on the input (padding cells marked), the patch in raw
    0-255 and normalized values, the kernel, the products cell by cell, the sum written out,
    the activation and the pooled cell the pixel feeds. For a pooled cell (`--pooled-at`) it
    prints the window, its values and the winner (max) or mean (avg). The numbers are the ones
    `convlens run` writes to stages.npz for the same settings.

    PyTorch's Conv2d computes cross-correlation (the kernel is not turned round); `--flip`
    shows true convolution beside it.

    With a model, `convlens explain MODEL IMAGE --layer NAME --channel C --at Y,X` explains any
    number inside any CNN (`convlens explain MODEL --layer NAME --help` lists its options).

    Examples:

    * `convlens explain dog.jpg --kernel sobel-h --at 120,45`
    * `convlens explain --patch "88 126 145; 86 125 142; 85 124 141" --kernel "1 0 1; 1 1 0; 0 0 0"`
    * `convlens explain dog.jpg --kernel laplacian --pooled-at 30,11 --figure pool.png`
    """
    from ..config import Activation, LayerConfig, parse_enum
    from ..explain import explain_pixel, explain_pooled, layer_words
    from ..kernels import kernel_array, unique_names
    from ..sizes import check_fits, parse_at

    if figure is not None:
        _check_figure_path(figure, force)
    chosen = opt.choose_kernels(kernels, kernel)
    names = unique_names(chosen)
    if patch is not None:
        _refuse_with_patch(ctx, image, at, pooled_at)
        data = _patch_array(patch)  # NumPy: a typed patch's arithmetic loads no torch
        config = LayerConfig(activation=parse_enum(Activation, activation, "activation"),
                             pool=None)
        source = "--patch"
    else:
        from ..images import load_image_array, sample_path

        config = opt.layer_config(stride, padding, padding_mode, dilation, activation, pool,
                                  pool_type, pool_stride)
        path = image if image is not None else sample_path()
        data = load_image_array(path, mode, max_side)  # explanations read NumPy: no torch
        source = escape(printable(path.name))
    weights = kernel_array(chosen, data.shape[0])
    if patch is not None and tuple(weights.shape[2:]) != tuple(data.shape[1:]):
        raise ConfigError(f"the patch is {data.shape[1]}x{data.shape[2]} but the kernel is "
                          f"{weights.shape[2]}x{weights.shape[3]}; give a patch of the "
                          "kernel's size")
    steps = check_fits(config, data.shape[1], data.shape[2], tuple(weights.shape[2:]))
    pixel = parse_at(at, "--at") if at is not None else None
    cell = parse_at(pooled_at, "--pooled-at") if pooled_at is not None else None
    if pixel is None and cell is None:
        pixel = (steps[0].outputs[0] // 2, steps[0].outputs[1] // 2)
    items: list[PixelExplanation | PooledExplanation] = []
    for index, name in enumerate(names):
        if pixel is not None:
            items.append(explain_pixel(data, weights, config, index, *pixel, kernel_name=name,
                                       flip=flip))
        if cell is not None:
            items.append(explain_pooled(data, weights, config, index, *cell, kernel_name=name))
    if as_json:
        dicts = [item.to_dict() for item in items]
        payload = dicts[0] if len(dicts) == 1 else dicts
        console.file.write(json.dumps(payload, indent=1) + "\n")
    else:
        shape = "x".join(map(str, data.shape))
        if patch is not None:
            console.print(f"your patch ({shape}, raw 0-255 values ÷ 255) under the kernel, then "
                          f"{config.activation.value}")
        else:
            console.print(f"[bold]{source}[/] ({shape}, channels x height x width) through "
                          f"{layer_words(config)}")
        if at is None and pooled_at is None and patch is None:
            console.print("[dim](no --at given: explaining the centre pixel of the conv map)[/]")
        for item in items:
            print_parts(item.parts())
    if figure is not None:
        from ..outputs import save_figure
        from ..plot.explain import plot_explanations

        save_figure(plot_explanations(items, flip=flip), figure)  # outputs' FIGURE_DPI
        (error_console if as_json else console).print(f"wrote {printable(figure)}",
                                                      markup=False)


STYLES = {"strong": "bold", "dim": "dim", "padding": PAD_STYLE, "winner": WIN_STYLE,
          "warning": "yellow"}
"""Rich styles of the parts' span and cell styles (:mod:`convlens.explain.parts`)."""


def print_parts(parts: Sequence[Part]) -> None:
    """Print an explanation's parts: headings as rules, sentences wrapped, grids side by side
    (padding in italics, the winner starred), the written sum one line per step, tables of
    words as tables."""
    from ..explain.parts import Grids, Heading, Note, Sentence, TextTable, WrittenSum

    for part in parts:
        if isinstance(part, Heading):
            console.print(Rule(escape(part.text), style="cyan" if part.level == 1 else "dim"))
        elif isinstance(part, Sentence):
            text = Text()
            for span in part.spans:
                text.append(span.text, STYLES.get(span.style, ""))
            console.print(text)
        elif isinstance(part, Note):
            console.print(Text(part.text, "dim"))
        elif isinstance(part, WrittenSum):
            console.print(Text.assemble((part.label, "bold"), f" ({part.unit}):" if part.unit
                                        else ":"), soft_wrap=True)
            console.print(Group(*(Text("  " + line) for line in part.steps())), soft_wrap=True)
        elif isinstance(part, Grids):
            items: list = []
            for operator, table in part.shown():
                if operator and items:
                    items.append(Text(f"\n{operator}", style="bold"))
                items.append(_rich_table(table))
            from rich.columns import Columns

            console.print(Columns(items, padding=(0, 2)))
        elif isinstance(part, TextTable):
            console.print(_rich_text_table(part))


def _rich_table(table: TablePart) -> Table:
    """A rich table of one grid part, labelled with its coordinates where it has them; a
    winner cell gets a star as well as the colour (plain-text output has no colour)."""
    title = table.caption(", {unit}")
    marks = table.marks or tuple(("",) * len(row) for row in table.cells)
    starred = any("winner" in row for row in marks)
    grid = Table(title=title, caption="* the winner" if starred else None, box=None,
                 pad_edge=False, title_style="bold", header_style="dim", caption_style="dim",
                 min_width=len(title), show_header=table.col_labels is not None)
    grid.add_column("", style="dim", justify="right")
    for col in table.col_labels or range(len(table.cells[0])):
        grid.add_column(str(col), justify="right")
    labels: Sequence[object] = (table.row_labels if table.row_labels is not None
                                else [""] * len(table.cells))
    for label, cells, row_marks in zip(labels, table.cells, marks):
        grid.add_row(str(label), *(
            Text(text + ("*" if mark == "winner" else ""), style=STYLES.get(mark, ""))
            for text, mark in zip(cells, row_marks)))
    return grid


def _patch_array(text: str) -> np.ndarray:
    """``--patch`` text -> a normalized float32 ``(C, kh, kw)`` array (raw 0-255 values / 255)."""
    import numpy as np

    from ..explain import RAW_SCALE
    from ..kernels import parse_numbers
    from ..numbers import format_number

    values = parse_numbers(text, "--patch")
    if values.min() < 0 or values.max() > RAW_SCALE:
        raise ConfigError(f"--patch takes raw pixel values 0-255; got values from "
                          f"{format_number(float(values.min()))} to "
                          f"{format_number(float(values.max()))}")
    return (values / RAW_SCALE).astype(np.float32)


def _refuse_with_patch(ctx: typer.Context, image, at, pooled_at) -> None:
    """--patch is the kernel's whole input: image, position and sliding flags do not apply."""
    given = [name for name, value in (("IMAGE", image), ("--at", at),
                                      ("--pooled-at", pooled_at)) if value is not None]
    for name in ("stride", "padding", "padding_mode", "dilation", "pool", "pool_type",
                 "pool_stride", "mode", "max_side"):
        source = ctx.get_parameter_source(name)
        if source is not None and source.name == "COMMANDLINE":
            given.append("--" + name.replace("_", "-"))
    if given:
        raise ConfigError(f"--patch is the kernel's whole input, so {', '.join(given)} do not "
                          "apply; leave them out (only --kernel and --activation do)")


def _check_figure_path(path: Path, force: bool) -> None:
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        raise ConfigError(f"--figure must end in {', '.join(FIGURE_SUFFIXES)}; got "
                          f"{printable(path.name)}")
    check_out_file(path, force)  # exists, a folder, under a file, not writable: one line


# --------------------------------------------------------------------------- size


@app.command(rich_help_panel=CONVOLUTION_COMMANDS)
def size(
    input_size: Annotated[str, typer.Option(
        "--input", "-i", help="Input side in pixels, or HxW (e.g. `224` or `300x451`).",
        show_default=False)],
    layers: Annotated[str | None, typer.Option(
        "--layers", "-l", help="A chain of layers: `\"conv3 p1, pool2, conv3 s2 p1 d2, pool3 s2 "
        "ceil\"`. Each is conv<F> or pool<F> (maxpool/avgpool, FxG) with s<N> stride, p<N> "
        "padding, same, valid, d<N> dilation, ceil.", show_default=False)] = None,
    kernel: Annotated[str | None, typer.Option(
        "--kernel", "-k", help="One conv layer: kernel size F (or FxG).",
        show_default=False)] = None,
    padding: Annotated[str, typer.Option("--padding", "-p", help="Padding P: cells per side, "
                                         "`valid` (0) or `same`.")] = "0",
    stride: Annotated[int, typer.Option("--stride", "-s", help="Stride S.")] = 1,
    dilation: Annotated[int, typer.Option("--dilation", "-d", help="Dilation D.")] = 1,
    pool: Annotated[str, typer.Option("--pool", help="Add a pool layer of this window after "
                                      "the conv (`none`: no pool).")] = "none",
    pool_stride: Annotated[int | None, typer.Option(
        "--pool-stride", help="Pool stride (default: the window).", show_default=False)] = None,
    ceil: Annotated[bool, typer.Option("--ceil", help="Pool with ceil_mode (round up).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the chain as JSON.")] = False,
) -> None:
    """Output sizes through conv and pool layers: `(I - F + 2P)/S + 1` with the numbers put in.

    Shows each layer's formula and result, the receptive field of one output pixel (how many
    input pixels it depends on), a warning where the division is not exact (PyTorch floors, or
    rounds up with ceil mode), the padding that would keep the size ('same'), and a clear
    error where no output remains.

    Examples:

    * `convlens size --input 5 --kernel 3 --padding 0 --stride 1` (the tutorial: 3)
    * `convlens size --input 224 --layers "conv3 p1, pool2, conv3 s2 p1 d2, pool3 s2 ceil"`
    """
    from ..config import parse_pool
    from ..sizes import LAYER_SYNTAX, LayerSpec, parse_size, size_chain

    if layers is not None and kernel is not None:
        raise ConfigError("give either --layers or a single layer (--kernel ...), not both")
    if layers is None:
        if kernel is None:
            raise ConfigError(f"give --kernel F for one conv layer, or --layers; {LAYER_SYNTAX}")
        sizes = [int(part) for part in kernel.lower().split("x")] if all(
            part.strip().isdigit() for part in kernel.lower().split("x")) else None
        if not sizes or len(sizes) > 2:
            raise ConfigError(f"--kernel must be a size F or FxG; got {kernel!r}")
        specs = [LayerSpec("conv", (sizes[0], sizes[-1]), stride if stride != 1 else None,
                           padding, dilation)]
        pool_size = parse_pool(pool)
        if pool_size is not None:
            specs.append(LayerSpec("pool", (pool_size, pool_size), pool_stride, ceil_mode=ceil))
        elif ceil or pool_stride is not None:
            raise ConfigError("--ceil and --pool-stride need --pool N")
        chain = size_chain(parse_size(input_size), specs)
    else:
        chain = size_chain(parse_size(input_size), layers)
    if as_json:
        console.file.write(json.dumps(chain.to_dict(), indent=1) + "\n")
        return
    print_chain(chain)


def print_chain(chain: SizeChain) -> None:
    """The size table, the warnings and the receptive field, in words
    (:func:`convlens.explain.chain_parts`). In a terminal too narrow for the table the
    formulas follow it, one line each."""
    from ..explain.chain import FORMULA_HEADING, chain_parts
    from ..explain.parts import TextTable

    parts = chain_parts(chain)
    for part in parts:
        if not isinstance(part, TextTable):
            print_parts([part])
            continue
        table = _rich_text_table(part)
        if fits(table):
            console.print(table)
            continue
        formula = [column.name for column in part.columns].index(FORMULA_HEADING)
        console.print(_rich_text_table(part, leave_out=formula))
        console.print(FORMULA_HEADING)
        for row, marks in zip(part.rows, part.marks or [None] * len(part.rows)):
            style = STYLES.get(marks[formula], "") if marks else ""
            console.print(Text(f"  {row[0]:>2} {row[2]:<4} ").append(row[formula], style))


def _rich_text_table(part: TextPart, leave_out: int | None = None) -> Table:
    """A rich table of a table-of-words part: its long columns (the notes are said after it),
    a group's value written once, cells marked ``warning`` in yellow."""
    shown = [i for i in part.shown(compact=False) if i != leave_out]
    table = Table(title=part.title, title_justify="left", show_edge=False)
    for i in shown:
        table.add_column(part.columns[i].name,
                         justify="right" if part.columns[i].align == "right" else "left")
    previous: tuple[str, ...] | None = None
    for r, row in enumerate(part.rows):
        same = previous is not None and all(
            row[i] == previous[i] for i, column in enumerate(part.columns) if column.group)
        cells = []
        for i in shown:
            text = "" if same and part.columns[i].group else row[i]
            mark = part.marks[r][i] if part.marks is not None else ""
            cells.append(Text(text, STYLES.get(mark, "")))
        table.add_row(*cells)
        previous = row
    return table


# --------------------------------------------------------------------------- animate


@app.command(rich_help_panel=CONVOLUTION_COMMANDS)
def animate(
    image: Annotated[Path | None, typer.Argument(
        help="Image to crop (default: the bundled cat photo).", show_default=False)] = None,
    values: Annotated[str | None, typer.Option(
        "--values", help="Your own input numbers instead of an image: rows split by `;`, e.g. "
        "`\"1 2 3 0; 0 1 2 3; 3 0 1 2; 2 3 0 1\"`.", show_default=False)] = None,
    kernel: Annotated[str, typer.Option(
        "--kernel", "-k", help="One kernel: a built-in name or inline rows (at most 7x7).")]
    = "sobel-h",
    crop_at: Annotated[str | None, typer.Option(
        "--at", help="TOP,LEFT of the image crop (default: the centre).",
        show_default=False)] = None,
    crop: Annotated[str, typer.Option(
        "--crop", help="Crop size in pixels: N or HxW (padded side at most 20).")]
    = str(DEFAULT_CROP),
    stride: opt.Stride = 1,
    padding: opt.Padding = "0",
    padding_mode: opt.PaddingModeOpt = "zeros",
    dilation: opt.Dilation = 1,
    frames: Annotated[int, typer.Option(
        "--frames", help="At most this many frames (one per output cell, then the finished "
        "output; 2..400).")] = DEFAULT_FRAMES,
    fps: Annotated[float, typer.Option("--fps", help="Frames per second (up to 30).")] = 2.0,
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Output file: .gif (always works) or .mp4 (needs imageio-ffmpeg).")]
    = Path("convlens-animation.gif"),
    force: ForceFile = False,
) -> None:
    """Animate a kernel sliding over a small input, the output filling in cell by cell.

    Each frame shows the padded input (padding shaded), where the kernel's taps land with their
    weights, the kernel, the output so far, and the current sum written out. The input is a
    crop of an image (gray, rounded to whole 0-255 values so every sum can be checked by hand)
    or your own numbers.

    Examples:

    * `convlens animate` (a 6x6 crop of the cat, sobel-h)
    * `convlens animate --values "1 2 3 0; 0 1 2 3; 3 0 1 2; 2 3 0 1" --padding 1
      --kernel "2 0 1; 0 1 2; 1 0 2"`
    * `convlens animate dog.jpg --at 120,80 --crop 7 --stride 2 --padding 1 --out slide.gif`
    """
    from ..animate import build_slide, crop_values, render_frames, write_animation
    from ..config import LayerConfig, PaddingMode, parse_enum
    from ..images import load_image, sample_path
    from ..kernels import parse_kernel
    from ..sizes import parse_at, parse_size
    check_out_file(out, force)  # before drawing any frame
    chosen = parse_kernel(kernel)
    if chosen.channels != 1:
        raise ConfigError("animate slides one gray kernel; got an RGB kernel")
    config = LayerConfig(stride=stride, padding=padding,
                         padding_mode=parse_enum(PaddingMode, padding_mode, "padding mode"),
                         dilation=dilation, pool=None)
    if values is not None:
        if image is not None or crop_at is not None:
            raise ConfigError("give either --values or an image (with --at/--crop), not both")
        grid = _values_grid(values)
        source = "your numbers"
    else:
        path = image if image is not None else sample_path()
        crop_size = parse_size(crop, "--crop")
        grid = crop_values(load_image(path, "gray"),
                           parse_at(crop_at, "--at") if crop_at else None, crop_size)
        source = f"a {crop_size[0]}x{crop_size[1]} crop of {escape(printable(path.name))} (0-255)"
    slide = build_slide(grid, chosen.as_2d(), config)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn("drawing frames"), BarColumn(), MofNCompleteColumn(),
                  console=error_console, transient=True) as progress:
        task = progress.add_task("frames", total=min(len(slide.steps), frames - 1) + 1
                                 if frames >= 2 else 1)
        images = render_frames(slide, frames,
                               progress=lambda done, total: progress.update(task, completed=done))
    path = write_animation(images, out, fps=fps, force=force)
    shown = len(images) - 1
    note = ("" if shown == len(slide.steps) else
            f"; the first {shown} of {len(slide.steps)} cells step by step, then the rest at once")
    console.print(f"wrote {escape(printable(path))}: {len(images)} frames of "
                  f"{images[0].width}x{images[0].height} px at {fps:g} fps, {slide.heading()} "
                  f"over {source}{note}")


def _values_grid(text: str) -> np.ndarray:
    import numpy as np

    from ..kernels import parse_numbers

    grid = parse_numbers(text, "--values")
    if grid.shape[0] != 1:
        raise ConfigError("--values takes one grid of numbers (no `|` channels)")
    return grid[0].astype(np.float64)

