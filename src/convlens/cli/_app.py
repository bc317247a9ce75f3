"""The typer app every command module registers on, and the consoles it prints to."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import typer
from rich.console import Console, RenderableType
from rich.measure import Measurement

from ..limits import BUDGET_ENV, DEFAULT_BUDGET_BYTES, WORK_PER_BYTE
from ..numbers import format_bytes

app = typer.Typer(
    name="convlens",
    help=(
        "See what a convolutional neural network does to an image, and why.\n\n"
        "Start with `convlens run` (the bundled photo through the tutorial's three edge "
        "kernels), then `convlens kernels` to see what else there is."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _flags_show_no_type() -> None:
    """typer (0.2x) prints ``<bool>`` beside every on/off flag in ``--help``, as if the flag took
    a value; show nothing there instead, as click does."""
    option = getattr(getattr(typer, "core", None), "TyperOption", None)
    shown = getattr(option, "display_type_rich", None)
    if option is None or shown is None or getattr(shown, "_convlens", False):
        return

    def display_type_rich(self, ctx):
        return None if getattr(self, "is_flag", False) else shown(self, ctx)

    display_type_rich._convlens = True  # type: ignore[attr-defined]
    option.display_type_rich = display_type_rich


_flags_show_no_type()


_WHOLE = re.compile(r"-?[0-9]{1,18}")
_DECIMAL = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,15})?")


def _plain_value(annotation: Any, info: object, value: object) -> tuple[bool, object]:
    """``(True, the value typer would give)`` for the plain cases: text for a text option, a
    default already of its type, and ``12``/``-3``/``0.5`` for an unbounded number; else
    ``(False, None)``, and typer coerces it as always (its own words for a bad value)."""
    if getattr(info, "parser", None) is not None:
        return False, None
    if annotation is str and isinstance(value, str):
        return True, value
    if get_origin(annotation) is list and get_args(annotation) == (str,) \
            and isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return True, list(value)
    if annotation is Path and isinstance(value, Path):
        return True, value
    if annotation in (int, float) and getattr(info, "min", None) is None \
            and getattr(info, "max", None) is None:
        if type(value) is annotation:
            return True, value
        if isinstance(value, str) and annotation is int and _WHOLE.fullmatch(value):
            return True, int(value)
        if isinstance(value, str) and annotation is float and _DECIMAL.fullmatch(value):
            return True, float(value)
    return False, None


def _plain_values_skip_pydantic() -> None:
    """typer (0.2x) builds a Pydantic validator for every parameter a command receives, and
    importing Pydantic costs a tenth of a second, as much as the whole arithmetic of
    ``convlens kernels`` or ``explain --patch``. Give the plain values (see
    :func:`_plain_value`) straight through, exactly as typer's validators would; anything
    else, and every bad value, still goes through typer."""
    parameter: Any = getattr(getattr(typer, "core", None), "_TyperParameter", None)
    coercion = sys.modules.get("typer._coercion")
    runtime: Any = getattr(coercion, "RuntimeParam", None)
    build: Any = getattr(coercion, "build_runtime_param", None)
    original: Any = getattr(parameter, "get_runtime_param", None)
    if parameter is None or runtime is None or build is None or original is None \
            or getattr(original, "_convlens", False):
        return

    class PlainFirst(runtime):
        """Plain values straight through; others by typer's own coercion, built when needed."""

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            plain, given = _plain_value(self.annotation, self.parameter_info, value)
            if plain:
                return given
            return build(param.type_descriptor)._coerce_value(value, param=param, ctx=ctx)

    def get_runtime_param(self: Any) -> Any:
        if getattr(self, "_runtime_param", None) is None:
            descriptor = self.type_descriptor
            if descriptor.is_file:
                return original(self)
            try:
                self._runtime_param = PlainFirst(parameter_info=descriptor.parameter_info,
                                                 annotation=descriptor.annotation)
            except (TypeError, AttributeError):  # another typer's internals: typer's own way
                return original(self)
        return self._runtime_param

    setattr(get_runtime_param, "_convlens", True)  # noqa: B010 (a function's attribute)
    parameter.get_runtime_param = get_runtime_param


_plain_values_skip_pydantic()

CONVOLUTION_COMMANDS = "See a convolution"
TRAINING_COMMANDS = "Train a classifier"
MODEL_COMMANDS = "Look inside a model"
COMMAND_ORDER = ("run", "kernels", "explain", "size", "animate", "serve",
                 "train", "evaluate", "predict", "layers", "inspect", "saliency")
"""How ``convlens --help`` lists the commands: from a first run to a trained model."""



def _print_version(value: bool) -> None:
    if value:
        from ..version import __version__

        console.print(f"convlens {__version__}", markup=False)
        raise typer.Exit()


@app.callback()
def _budget(budget: Annotated[str | None, typer.Option(
        "--budget", metavar="SIZE", show_default=False,
        help=f"Memory budget of one job, e.g. `16G`, `512M` or `none` (default "
        f"{format_bytes(DEFAULT_BUDGET_BYTES)}, or ${BUDGET_ENV}). Every run, download, "
        "training set and model is estimated from its shapes first and refused, in one line, "
        f"past it; work is held to {WORK_PER_BYTE} multiply-adds a byte. Goes before the "
        "command: `convlens --budget 16G run big.png`.")] = None,
        version: Annotated[bool, typer.Option(
            "--version", is_eager=True, callback=_print_version,
            help="Print convlens' version and stop.")] = False) -> None:
    from ..limits import set_budget

    set_budget(budget)  # None forgets an earlier setting: in-process calls start afresh


console = Console(highlight=False)
error_console = Console(stderr=True, highlight=False, soft_wrap=True)


def fits(renderable: RenderableType) -> bool:
    """Whether ``renderable`` (a table) fits the terminal at its natural width, no cell
    wrapping; where it does not, commands print long cells as lines of their own."""
    unbounded = console.options.update_width(10_000)
    return Measurement.get(console, unbounded, renderable).maximum <= console.width
