"""The typer app every command module registers on, and the consoles it prints to."""

from __future__ import annotations

from typing import Annotated

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
