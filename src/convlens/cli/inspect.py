"""``convlens layers``, ``convlens inspect`` and ``convlens saliency``: look inside any CNN."""

from __future__ import annotations

import functools
import inspect
import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import JustifyMethod
from rich.markup import escape
from rich.table import Table

from ..defaults import STORED_MAX_SIDE
from ..errors import ConfigError, ImageError
from ..wording import percent
from . import _options as opt
from ._app import MODEL_COMMANDS, app, console, error_console, fits

if TYPE_CHECKING:  # the library loads when a command runs, not for --help
    from ..inspect import FeatureMaps, LayerTable
    from ..models import OpenedModel
    from ..models.heads import ChosenOutput
    from ..results.inspection import KernelMatches, TopImages

MODEL = "Model"
SHOW = "What to show"

ModelSpec = Annotated[str, typer.Argument(
    help="A convlens checkpoint (`model.safetensors` or its folder), a torch.export `.pt2` "
         "program, a registry name (with --weights), `torchvision:NAME`, or, with "
         "--trust-code, a TorchScript file or `package.module:factory` (with --weights).",
    show_default=False)]
ImageArg = Annotated[Path | None, typer.Argument(
    help="Image to look at (default: the bundled cat photo).", show_default=False)]
Weights = Annotated[Path | None, typer.Option(
    "--weights", "-w", help="State dict (`.safetensors` or `.pt`, loaded without running code) "
    "for a factory, registry or torchvision model.", rich_help_panel=MODEL)]
Arch = Annotated[str | None, typer.Option(
    "--arch", help="Registry architecture (`tinyvgg`, `lenet`, `resnet9`) of a bare state dict "
    "file.", rich_help_panel=MODEL)]
InputSize = Annotated[str | None, typer.Option(
    "--input-size", help="Input size HxW in pixels (default: what the model file says; else "
    "the image's own size).", rich_help_panel=MODEL)]
Mean = Annotated[str | None, typer.Option(
    "--mean", help="Per-channel normalization mean, e.g. `0.485,0.456,0.406`, for models that do "
    "not carry it.", rich_help_panel=MODEL)]
Std = Annotated[str | None, typer.Option(
    "--std", help="Per-channel normalization std, e.g. `0.229,0.224,0.225`.",
    rich_help_panel=MODEL)]
TrustCode = Annotated[bool, typer.Option(
    "--trust-code", "--trust-pickle", help="Run the model's own code to open it: a pickled "
    "module, TorchScript, a .pt2 with pickled parts, or a package.module:factory (imported and "
    "called: your own Python code). Any of these can do anything your user account can, so "
    "only for files and code you trust. Off by default: convlens then opens only checkpoints, "
    "weights and plain .pt2 programs, which cannot run code.", rich_help_panel=MODEL)]
Output = Annotated[str | None, typer.Option(
    "--output", help="Of a model that returns several outputs (a tuple or dict, e.g. MTCNN's "
    "box offsets, landmarks and face probability): the one holding the class scores, by place "
    "(0, 1, ...) or name. Default: the only one whose rows are probabilities, else the only "
    "(N, classes) one; a note says which was used.", metavar="N|NAME", show_default=False,
    rich_help_panel=MODEL)]
ModelDevice = Annotated[str, typer.Option(
    "--device", help="`auto` (CUDA, then MPS, then CPU), `cpu`, `cuda` or `mps`.",
    rich_help_panel=MODEL)]
TopK = Annotated[int, typer.Option("--top-k", help="How many predictions to list.",
                                   rich_help_panel=SHOW)]
OutDir = Annotated[Path | None, typer.Option(
    "--out", "-o", help="Result folder (default: a new folder under convlens-out/).")]


@dataclass(frozen=True)
class ModelFlags:
    """The MODEL options that say how to open a model (``--weights``, ``--arch``,
    ``--input-size``, ``--mean``, ``--std``, ``--trust-code``) as one value; a command takes
    them as one ``flags: ModelFlags`` parameter (see :func:`with_model_flags`)."""

    weights: Path | None = None
    arch: str | None = None
    input_size: str | None = None
    mean: str | None = None
    std: str | None = None
    trust_code: bool = False


MODEL_OPTIONS = {"weights": Weights, "arch": Arch, "input_size": InputSize, "mean": Mean,
               "std": Std, "trust_code": TrustCode}
"""Each :class:`ModelFlags` field's typer option, in the order ``--help`` lists them."""
MODEL_DEFAULTS = ModelFlags()


def with_model_flags(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` with its ``flags: ModelFlags`` parameter written out as the MODEL options,
    in its place, for typer (so ``--help`` lists them there); the command receives them as one
    :class:`ModelFlags`. One list of options, not one per command."""
    signature = inspect.signature(command, eval_str=True)
    parameters: list[inspect.Parameter] = []
    for parameter in signature.parameters.values():
        if parameter.name != "flags":
            parameters.append(parameter)
            continue
        parameters += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                         annotation=annotation,
                                         default=getattr(ModelFlags, name))
                       for name, annotation in MODEL_OPTIONS.items()]

    @functools.wraps(command)
    def run(**given: Any) -> None:
        flags = ModelFlags(**{name: given.pop(name) for name in MODEL_OPTIONS})
        command(**given, flags=flags)

    setattr(run, "__signature__", signature.replace(  # noqa: B010 (a function's attribute)
        parameters=[p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in parameters]))
    return run


def open_model_for_cli(model: str, flags: ModelFlags, device: str, quiet: bool = False,
                       output: str | None = None) -> OpenedModel:
    """Open the model the MODEL options name (shared by ``layers``, ``inspect``, ``saliency``,
    ``explain`` and ``serve``) and say what was opened, with any notes."""
    from ..models import open_model

    opened = open_model(model, weights=flags.weights, arch=flags.arch,
                        input_size=flags.input_size, mean=_numbers(flags.mean, "--mean"),
                        std=_numbers(flags.std, "--std"), trust_code=flags.trust_code,
                        device=device, output=output)
    (error_console if quiet else console).print(f"model: {opened.describe()}", markup=False,
                                                highlight=False)
    for note in opened.notes:
        error_console.print(f"note: {note}", markup=False)
    return opened


def say_outputs(chosen: ChosenOutput | None, asked: bool) -> None:
    """Of a model that returns several outputs: which holds the class scores, why, and the
    others (with how to choose another where the user did not choose)."""
    note = None if chosen is None else chosen.note()
    if note:
        hint = "" if asked else " (choose another with --output N)"
        error_console.print(f"note: {note}{hint}", markup=False)


def _numbers(text: str | None, flag: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(part) for part in text.replace(" ", ",").split(",") if part]
    except ValueError:
        raise ConfigError(f"{flag} must be numbers separated by commas; got {text!r}") from None


def _command(ctx: typer.Context) -> str:
    return shlex.join(["convlens", *(ctx.obj or {}).get("argv", [])])


# --------------------------------------------------------------------------- layers


@app.command("layers", rich_help_panel=MODEL_COMMANDS)
def layers_command(
    model: ModelSpec,
    input_size: InputSize = None,
    depth: Annotated[int | None, typer.Option(
        "--depth", help="Show layers nested at most this deep (1 = top level).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
    weights: Weights = None,
    arch: Arch = None,
    trust_code: TrustCode = False,
    output: Output = None,
    device: ModelDevice = "cpu",
) -> None:
    """List every layer with its output shape, parameters and receptive field.

    One blank image of the model's input size (or `--input-size`) runs through the model. If
    the model fails on it, the table still shows every layer up to the failing one, and the
    error says what mismatched (e.g. `'flatten' (Flatten) gives 1280 features, but
    'classifier' (Linear) expects 640`) and a hint gives the input size to use.

    Examples:

    * `convlens layers runs/pets/model.safetensors`
    * `convlens layers model.pt --input-size 224x224` (TorchScript)
    * `convlens layers mynets.small:build --input-size 64 --depth 2`
    """
    from ..inspect import LayerTableError, layer_table

    opened = open_model_for_cli(model, ModelFlags(weights, arch, input_size,
                                                  trust_code=trust_code),
                                device, quiet=as_json, output=output)
    try:
        table = layer_table(opened)  # at --input-size: open_model applied it
    except LayerTableError as exc:
        _print_layers(exc.table, depth, as_json)
        raise
    _print_layers(table, depth, as_json)
    if not as_json:
        say_outputs(table.outputs, opened.output is not None)


_LAYER_COLUMNS: tuple[tuple[str, JustifyMethod], ...] = (
    ("layer", "left"), ("type", "left"), ("output shape", "left"), ("params", "right"),
    ("receptive field", "right"), ("kernel", "left"))
_DROPPED_FIRST = ("kernel", "receptive field", "indentation")
"""What a narrow terminal loses, in this order, before any layer name is folded."""


def _print_layers(table: LayerTable, depth: int | None, as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(table.to_dict()))
        return
    rows = []
    for row in table.rows:
        if depth is not None and row.depth > depth:
            continue
        out = "[bold red]fails here[/]" if row.failed else (
            "x".join(map(str, row.output_shape)) if row.output_shape else "-")
        field_ = "" if row.receptive_field is None else "x".join(map(str, row.receptive_field))
        params = f"{row.params:,}" if row.params else "-"
        if row.subtree_params > row.params:
            params = f"[dim]({row.subtree_params:,})[/]"
        rows.append((escape(row.name), row.layer_type, out, params, field_, row.geometry,
                     row.depth))
    dropped: list[str] = []
    grid = _layers_grid(table, rows, dropped)
    while not fits(grid) and len(dropped) < len(_DROPPED_FIRST):
        dropped.append(_DROPPED_FIRST[len(dropped)])
        grid = _layers_grid(table, rows, dropped)
    console.print(grid)
    output = "x".join(map(str, table.output_shape)) if table.output_shape else "-"
    console.print(f"total params: {table.total_params:,}  trainable: {table.trainable_params:,}  "
                  f"output: {output}  (params in parentheses: a block's total)", markup=False)
    if dropped:
        console.print(f"(left out to fit {console.width} columns: {', '.join(dropped)}; "
                      "--json has every column)", markup=False)
    if table.size_hint is not None:
        side = table.size_hint.side
        console.print(f"hint: {table.size_hint.sentence()}: pass --input-size {side}x{side}",
                      markup=False)
    for note in table.notes:
        error_console.print(f"note: {note}", markup=False)


def _layers_grid(table: LayerTable, rows: list[tuple], dropped: list[str]) -> Table:
    shape = "x".join(map(str, table.input_shape))
    order = ("batch x channels x height x width" if len(table.input_shape) == 4
             else "batch first")
    grid = Table(title=f"layers for a {shape} input ({order})", show_edge=False,
                 pad_edge=False)
    kept = [index for index, (column, _) in enumerate(_LAYER_COLUMNS) if column not in dropped]
    for index in kept:
        column, justify = _LAYER_COLUMNS[index]
        # other cells fold onto more lines before a layer name does (then it folds too)
        grid.add_column(column, justify=justify, overflow="fold",
                        no_wrap=column == "layer")
    indent = "indentation" not in dropped
    for *cells, depth in rows:
        cells[0] = "  " * (depth - 1) * indent + cells[0]
        grid.add_row(*(cells[index] for index in kept))
    return grid


# --------------------------------------------------------------------------- inspect


@app.command("inspect", rich_help_panel=MODEL_COMMANDS)
@with_model_flags
def inspect_command(
    ctx: typer.Context,
    model: ModelSpec,
    image: ImageArg = None,
    layer: Annotated[list[str] | None, typer.Option(
        "--layer", "-l", help="Layer whose feature maps to show (see `convlens layers`). "
        "Repeatable. Default: the first conv layer.", rich_help_panel=SHOW)] = None,
    all_conv: Annotated[bool, typer.Option(
        "--all-conv", help="Show every conv layer.", rich_help_panel=SHOW)] = False,
    top: Annotated[int, typer.Option(
        "--top", help="Channels per feature-map figure, the most active first (all are in "
        "the npz).", rich_help_panel=SHOW)] = 8,
    scale: Annotated[str, typer.Option(
        "--scale", help="Filter colour scale: `shared` (strengths compare) or `per-filter` "
        "(each filter stretched).", rich_help_panel=SHOW)] = "shared",
    filter_view: Annotated[str, typer.Option(
        "--filter-view", help="Filters with several input channels: `auto` (RGB tiles for 3 "
        "input channels, else `strongest`), `rgb`, `strongest` (each filter's 4 strongest "
        "input channels, the weights themselves), `mean` (over input channels: opposite signs "
        "cancel) or `channels` (every input channel).",
        rich_help_panel=SHOW)] = "auto",
    full_size: Annotated[bool, typer.Option(
        "--full-size", help=f"Keep feature maps at full size in the npz (default: at most "
        f"{STORED_MAX_SIDE} px a side, which bounds memory on large images).",
        rich_help_panel=SHOW)] = False,
    data: Annotated[Path | None, typer.Option(
        "--data", help="Folder of images (searched recursively): find the ones that most "
        "activate --channel of the first --layer.", rich_help_panel=SHOW)] = None,
    channel: Annotated[int | None, typer.Option(
        "--channel", help="Channel for --data (default: the most active one for IMAGE).",
        rich_help_panel=SHOW)] = None,
    images_shown: Annotated[int, typer.Option(
        "--images", help="How many --data images to show.", rich_help_panel=SHOW)] = 8,
    top_k: TopK = 5,
    flags: ModelFlags = MODEL_DEFAULTS,
    output: Output = None,
    device: ModelDevice = "auto",
    out: OutDir = None,
    force: opt.Force = False,
) -> None:
    """Show what a trained CNN does to an image: feature maps, learned filters, predictions.

    Writes into `convlens-out/inspect-<image>/` (or `--out`): `maps-<layer>.png` per layer
    (the `--top` most active channels, each titled with shape and range), `feature-maps.npz`
    (float32 `(C, H, W)` per layer name, like `convlens run`), `filters-<layer>.png` for conv
    layers, `learned-vs-classical.png` (each first-layer filter beside the nearest built-in
    kernel: the tutorial's edge detectors, found inside the network), `predictions.png`,
    `input.png` and `inspect.json`; with `--data`, `top-images-<layer>-ch<N>.png`.

    Examples:

    * `convlens inspect runs/pets/model.safetensors dog.jpg --layer features.0 --layer features.3`
    * `convlens inspect model.pt dog.jpg --all-conv --top 8` (TorchScript)
    * `convlens inspect runs/pets dog.jpg --layer features.3 --data pets/val --channel 5`
    """
    from ..images import iter_image_files, sample_path
    from ..outputs import check_out_dir, printable
    from ..plot.models import parse_scale, parse_view
    from ..results.inspection import inspect_image

    if top < 1 or top_k < 1 or images_shown < 1:
        raise ConfigError("--top, --top-k and --images must be at least 1")
    scale_choice, view_choice = parse_scale(scale), parse_view(filter_view)
    source = image if image is not None else sample_path()
    folder = out if out is not None else opt.DEFAULT_ROOT / f"inspect-{source.stem}"
    check_out_dir(folder, force)
    sources: list[Path] = []
    if data is not None:
        if not data.is_dir():
            raise ImageError(f"--data must be a folder of images; got {printable(data)}")
        sources = list(iter_image_files([data], recursive=True))
    opened = open_model_for_cli(model, flags, device, output=output)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=error_console, transient=True,
                  disable=not sources) as progress:
        task = progress.add_task(f"searching {printable(data or '')}", total=len(sources))
        inspection = inspect_image(
            opened, source, layer or [], all_conv=all_conv,
            max_side=None if full_size else STORED_MAX_SIDE, top_k=top_k, data=sources,
            channel=channel, images=images_shown, progress=lambda n: progress.advance(task, n))
    say_outputs(inspection.outputs, opened.output is not None)
    if inspection.predictions:
        console.print(_predictions_table(inspection.predictions))
    for maps in inspection.layers.values():
        console.print(_stats_table(maps, top))
    if inspection.nearest is not None:
        if inspection.nearest.note:
            error_console.print(f"note: {inspection.nearest.note}", markup=False)
        else:
            console.print(_nearest_table(inspection.nearest))
    if inspection.top_images is not None:
        console.print(_top_images_table(inspection.top_images))
    files = inspection.write(folder, force=force, command=_command(ctx), top=top,
                             scale=scale_choice, view=view_choice)
    console.print(f"wrote {len(files)} files to {printable(folder)}/", markup=False)


def _nearest_table(nearest: KernelMatches) -> Table:
    from ..results.inspection import NEAREST_SHOWN

    grid = Table(title=f"{nearest.layer}: filters closest to a built-in kernel", show_edge=False)
    for column in ("filter", "nearest kernel", "cosine"):
        grid.add_column(column)
    for match in nearest.best(NEAREST_SHOWN):
        grid.add_row(f"#{match.filter_index}", match.label, f"{match.similarity:.3f}")
    return grid


def _top_images_table(tops: TopImages) -> Table:
    from ..outputs import printable

    grid = Table(title=f"{tops.layer} channel {tops.channel}: top {len(tops.images)} of "
                       f"{tops.searched} images", show_edge=False)
    grid.add_column("image")
    grid.add_column("mean activation", justify="right")
    for item in tops.images:
        grid.add_row(escape(printable(item.source)), f"{item.score:.4g}")
    return grid


def _stats_table(maps: FeatureMaps, top: int) -> Table:
    channels = maps.top(top)
    total, height, width = maps.shape
    grid = Table(title=f"{maps.name} ({maps.layer_type}) {total}x{height}x{width} (channels x "
                       f"height x width): {len(channels)} most active channels", show_edge=False)
    for column in ("channel", "mean", "std", "min", "max", "zeros"):
        grid.add_column(column, justify="right")
    stats = maps.stats
    for c in channels:
        grid.add_row(str(c), f"{stats.mean[c]:.4g}", f"{stats.std[c]:.4g}",
                     f"{stats.minimum[c]:.4g}", f"{stats.maximum[c]:.4g}",
                     f"{stats.zero_fraction[c]:.1%}")
    return grid


def _predictions_table(predictions) -> Table:
    from ..outputs import printable

    grid = Table(title="predictions", show_edge=False)
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("rank", "right"), ("class", "left"), ("index", "right"), ("probability", "right"))
    for column, justify in columns:
        grid.add_column(column, justify=justify)
    for rank, item in enumerate(predictions, start=1):
        grid.add_row(str(rank), escape(printable(item.label)), str(item.index),
                     percent(item.probability, 2))
    return grid


# --------------------------------------------------------------------------- saliency


@app.command("saliency", rich_help_panel=MODEL_COMMANDS)
@with_model_flags
def saliency_command(
    ctx: typer.Context,
    model: ModelSpec,
    image: ImageArg = None,
    class_: Annotated[str | None, typer.Option(
        "--class", "-c", help="Class to explain: a name or an index (default: the top "
        "prediction).", rich_help_panel=SHOW)] = None,
    method: Annotated[list[str] | None, typer.Option(
        "--method", "-m", help="`gradcam`, `integrated-gradients`, `guided-backprop` or `all`. "
        "Repeatable. Default: gradcam and integrated-gradients.", rich_help_panel=SHOW)] = None,
    layer: Annotated[str | None, typer.Option(
        "--layer", "-l", help="Layer for Grad-CAM (default: the last conv layer).",
        rich_help_panel=SHOW)] = None,
    steps: Annotated[int, typer.Option(
        "--steps", help="Integrated-gradients steps (more: smaller convergence delta).",
        rich_help_panel=SHOW)] = 32,
    top_k: TopK = 5,
    flags: ModelFlags = MODEL_DEFAULTS,
    output: Output = None,
    device: ModelDevice = "auto",
    out: OutDir = None,
    force: opt.Force = False,
) -> None:
    """Show which pixels made the model choose a class: Grad-CAM and gradient saliency.

    Writes into `convlens-out/saliency-<image>/` (or `--out`): `saliency.png` (per method the
    heatmap and the heatmap over the image, titled with layer, shape and range),
    `predictions.png`, `saliency.npz` (`input` `(C, H, W)` as the model saw it, and one
    `(H, W)` heatmap per method: `gradcam`, `integrated_gradients`, `guided_backprop`) and
    `saliency.json`.

    Examples:

    * `convlens saliency runs/pets/model.safetensors dog.jpg --class dog --method gradcam`
    * `convlens saliency model.pt cat.png --method all --layer features.6`
    """
    from ..images import sample_path
    from ..outputs import check_out_dir, printable
    from ..results.saliency import DEFAULT_METHODS, saliency_image

    if top_k < 1:
        raise ConfigError("--top-k must be at least 1")
    source = image if image is not None else sample_path()
    folder = out if out is not None else opt.DEFAULT_ROOT / f"saliency-{source.stem}"
    check_out_dir(folder, force)
    opened = open_model_for_cli(model, flags, device, output=output)
    found = saliency_image(opened, source, method or DEFAULT_METHODS, class_, layer, steps, top_k)
    for note in found.notes:
        error_console.print(f"note: {note}", markup=False)
    result = found.saliency
    say_outputs(result.outputs, opened.output is not None)
    if result.predictions:
        console.print(_predictions_table(result.predictions))
    grid = Table(title=f"saliency for class '{result.label}' (index {result.target})",
                 caption="shape: height x width", show_edge=False)
    for column in ("method", "layer", "shape", "max", "note"):
        grid.add_column(column)
    for item in result.maps:
        grid.add_row(item.method.label, item.layer or "-",
                     "x".join(map(str, item.heatmap.shape)), f"{float(item.heatmap.max()):.4g}",
                     item.note)
    console.print(grid)
    files = found.write(folder, force=force, command=_command(ctx))
    console.print(f"wrote {len(files)} files to {printable(folder)}/", markup=False)
