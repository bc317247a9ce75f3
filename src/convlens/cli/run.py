"""``convlens run`` and ``convlens kernels``."""

from __future__ import annotations

import gc
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ..defaults import DEFAULT_MAX_SIDE
from ..errors import ConvlensError
from . import _options as opt
from ._app import CONVOLUTION_COMMANDS, app, console, error_console, fits

if TYPE_CHECKING:  # the library loads when a command runs, not for --help
    from ..stages import Stages, StageSummary

SIZE_HEADING = "size: (I - F + 2P)/S + 1"


@app.command(rich_help_panel=CONVOLUTION_COMMANDS)
def run(
    ctx: typer.Context,
    images: Annotated[list[Path] | None, typer.Argument(
        help="Image files or folders of images (default: the bundled cat photo).",
        show_default=False)] = None,
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
    device: opt.Device = "auto",
    out: opt.OutDir = None,
    force: opt.Force = False,
    winners: Annotated[bool, typer.Option(
        "--winners", help="Also draw winners.png: which pixel won each max-pool window, so "
        "what pooling keeps and drops is visible.")] = False,
    explain_at: Annotated[str | None, typer.Option(
        "--explain", help="ROW,COL of a conv pixel: also write explain.json and explain.png, "
        "its arithmetic for every kernel (see `convlens explain`).", show_default=False)] = None,
    report: Annotated[bool, typer.Option(
        "--report/--no-report", help="Write report.html: every stage with plain-words "
        "captions, sizes and arithmetic, images inline (one self-contained file).")] = True,
    npz_arrays: Annotated[str, typer.Option(
        "--npz", metavar="all|none|NAMES",
        help="What stages.npz holds: `all` (float32 input, kernels, conv, activated, "
        "pooled), `none` (no file), or a comma list such as `conv,pooled`.")] = "all",
    npz_dtype: Annotated[str, typer.Option(
        "--npz-dtype", metavar="float32|float16",
        help="`float32` (exact) or `float16`: half the bytes, each value rounded "
        "to 11 significant bits (at most 0.049% off); the file's `about` says what it "
        "holds.")] = "float32",
) -> None:
    """Run images through conv -> activation -> pool and write every stage.

    Prints a table of the stages and writes, per image, `filters.png`, `conv.png`,
    `activated.png`, `pooled.png`, `stages.npz` (float32 `input`, `kernels`, `conv`,
    `activated`, `pooled`), `report.html` (the whole story with captions, one file) and
    `run.json` (settings and command) into `convlens-out/<image-stem>/` or `--out`.
    `--winners` adds `winners.png`, `--explain ROW,COL` adds `explain.json` and `explain.png`.
    A stages.npz over 256 MiB is announced before it is written; `--npz` and `--npz-dtype`
    write less.

    Kernel sides, the number of kernels and the layer numbers have fixed limits (README,
    `convlens.limits`); a run whose estimated memory passes the budget is refused before it
    starts: raise it with `convlens --budget 16G run ...` or `CONVLENS_BUDGET=16G`.

    Examples:

    * `convlens run` (the bundled photo, the tutorial's three kernels)
    * `convlens run --winners --explain 120,45` (pooling winners, one pixel worked out)
    * `convlens run dog.jpg --kernels sobel-h,laplacian,sobel-v --pool 2 --out dog-maps`
    * `convlens run dog.jpg --kernel "1 0 -1; 2 0 -2; 1 0 -1" --padding same --stride 2`
    """
    from ..images import iter_image_files, sample_path
    from ..outputs import check_out_dir, printable
    from ..runs import NpzChoice, RunResult, output_folders, run_image
    from ..sizes import parse_at

    chosen = opt.choose_kernels(kernels, kernel)
    npz = NpzChoice.parse(npz_arrays, npz_dtype)
    config = opt.layer_config(stride, padding, padding_mode, dilation, activation, pool,
                              pool_type, pool_stride)
    sources = list(iter_image_files(images)) if images else [sample_path()]
    folders = output_folders(sources, out, opt.DEFAULT_ROOT)
    if len(sources) > 1:  # the batch's root must take new folders: else stop before any work
        check_out_dir(folders[0].parent, force=True)
    command = shlex.join(["convlens", *(ctx.obj or {}).get("argv", [])])
    at = parse_at(explain_at, "--explain") if explain_at else None

    def run_one(source: Path, folder: Path) -> RunResult:
        return run_image(source, chosen, config, folder, mode=mode, max_side=max_side,
                         device=device, force=force, command=command, winners=winners,
                         report=report, explain_at=at, npz=npz, notify=announce_npz)

    if len(sources) == 1:
        result = run_one(sources[0], folders[0])
        print_stage_table(result.stages,
                          title=escape(printable(f"{sources[0].name} -> {folders[0]}")))
        console.print(f"wrote {len(result.files)} files to {printable(folders[0])}/ "
                      f"in {result.seconds:.2f} s", markup=False)
        return

    failures: list[tuple[Path, str]] = []
    summary = Table(title=f"{len(sources)} images", caption="pooled shape: channels x height x "
                    "width", show_edge=False)
    for column in ("image", "pooled shape", "folder", "seconds"):
        summary.add_column(column)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=error_console, transient=True) as progress:
        task = progress.add_task("running", total=len(sources))
        for source, folder in zip(sources, folders):
            progress.update(task, description=escape(printable(source.name)))
            try:
                result = run_one(source, folder)
                summary.add_row(Text(printable(source.name)),
                                "x".join(map(str, result.stages.arrays.pooled.shape)),
                                Text(printable(folder)), f"{result.seconds:.2f}")
                del result
            except ConvlensError as exc:
                failures.append((source, exc.worded("cli")))
                error_console.print(printable(f"skipped {source}: {exc.worded('cli')}"),
                                    markup=False)
            gc.collect()
            progress.advance(task)
    console.print(summary)
    if failures:
        error_console.print(f"error: {len(failures)} of {len(sources)} images failed",
                            markup=False)
        raise typer.Exit(1)


def announce_npz(note: str) -> None:
    """Print the library's note on a large stages.npz, with the flags that write less."""
    error_console.print(f"note: {note}; write less with --npz (e.g. conv,pooled, or none) or "
                        "--npz-dtype float16 (half the bytes)", markup=False, highlight=False)


@app.command("kernels", rich_help_panel=CONVOLUTION_COMMANDS)
def kernels_command(
    pattern: Annotated[str, typer.Argument(help="Shell-style filter, e.g. `sobel*`.")] = "*",
) -> None:
    """List the built-in kernels with their numbers and what each one finds."""
    from ..kernels import common_denominator, get_kernel, list_kernels
    from ..numbers import format_number

    names = list_kernels(pattern)
    if not names:
        raise ConvlensError(f"no built-in kernel matches {pattern!r}; see `convlens kernels`")
    table = Table(title="Built-in kernels (use with --kernels or --kernel)", show_lines=True)
    table.add_column("name", style="bold")
    table.add_column("weights", justify="right")
    table.add_column("what it finds")
    for name in names:
        item = get_kernel(name)
        weights = item.as_2d()
        denominator = common_denominator(weights)
        rows = "\n".join("  ".join(f"{format_number(v * denominator):>3}" for v in row)
                         for row in weights)
        if denominator > 1:
            rows = f"1/{denominator} x\n{rows}"
        aliases = f"\n(also: {', '.join(item.aliases)})" if item.aliases else ""
        table.add_row(name + aliases, rows, item.description)
    console.print(table)


def stage_table(stages: Stages, title: str = "", with_sizes: bool = True,
                rows: list[StageSummary] | None = None) -> Table:
    """The rich table of stages: shape, range, zeroed share and (``with_sizes``) the size
    formula. ``rows`` are ``stages.summary(separator="\n")`` when already computed."""
    table = Table(title=title or None, show_edge=False,
                  caption="shape: channels x height x width")
    columns = [("stage", "left"), ("shape", "left"), ("min", "right"), ("max", "right"),
               ("zeroed", "right")] + ([(SIZE_HEADING, "left")] if with_sizes else [])
    for column, justify in columns:
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows if rows is not None else stages.summary(separator="\n"):
        zeroed = "" if row.zeroed is None else f"{row.zeroed:.1%}"
        cells = [row.stage, "x".join(map(str, row.shape)), f"{row.minimum:.4g}",
                 f"{row.maximum:.4g}", zeroed] + ([row.size_formula] if with_sizes else [])
        table.add_row(*cells)
    return table


def print_stage_table(stages: Stages, title: str = "") -> None:
    """Print :func:`stage_table`; where the formulas would wrap in a narrow terminal they go
    below the table instead, one line each. The stages' statistics are computed once."""
    rows = stages.summary(separator="\n")
    table = stage_table(stages, title, rows=rows)
    if fits(table):
        console.print(table)
        return
    console.print(stage_table(stages, title, with_sizes=False, rows=rows))
    console.print(SIZE_HEADING)
    for row in rows:
        for number, line in enumerate(row.size_formula.splitlines()):
            console.print(f"  {row.stage if number == 0 else '':<9} {line}", highlight=False,
                          soft_wrap=True)
