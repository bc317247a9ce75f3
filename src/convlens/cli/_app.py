"""The typer app every command module registers on, and the consoles it prints to."""

from __future__ import annotations

import typer
from rich.console import Console, RenderableType
from rich.measure import Measurement

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

CONVOLUTION_COMMANDS = "See a convolution"
TRAINING_COMMANDS = "Train a classifier"
MODEL_COMMANDS = "Look inside a model"
COMMAND_ORDER = ("run", "kernels", "explain", "size", "animate", "serve",
                 "train", "evaluate", "predict", "layers", "inspect", "saliency")
"""How ``convlens --help`` lists the commands: from a first run to a trained model."""

console = Console(highlight=False)
error_console = Console(stderr=True, highlight=False, soft_wrap=True)


def fits(renderable: RenderableType) -> bool:
    """Whether ``renderable`` (a table) fits the terminal at its natural width, no cell
    wrapping; where it does not, commands print long cells as lines of their own."""
    unbounded = console.options.update_width(10_000)
    return Measurement.get(console, unbounded, renderable).maximum <= console.width
