"""``convlens explain MODEL IMAGE --layer NAME --channel C --at Y,X``: any number inside any CNN.

``convlens explain`` without a model explains the tutorial's one layer (:mod:`.explain`); with
``--layer`` the command line is routed here (:func:`route`), to the hidden ``explain-model``
command, which takes the model options of ``convlens inspect``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..errors import ConfigError
from ..outputs import printable
from ._app import MODEL_COMMANDS, app, console, error_console
from ._routing import COMMAND
from .explain import ForceFile, _check_figure_path, print_parts
from .inspect import (
    MODEL_DEFAULTS,
    ImageArg,
    ModelDevice,
    ModelFlags,
    ModelSpec,
    open_model_for_cli,
    with_model_flags,
)


@app.command(COMMAND, hidden=True, rich_help_panel=MODEL_COMMANDS)
@with_model_flags
def explain_model(
    model: ModelSpec,
    image: ImageArg = None,
    layer: Annotated[str, typer.Option(
        "--layer", "-l", help="The layer whose output holds the number (see `convlens "
        "layers MODEL`); where torch.fx traces the model also `add`, `cat`, ... (x + y and "
        "torch.cat in its forward).", show_default=False)] = "",
    channel: Annotated[int | None, typer.Option(
        "--channel", "-c", help="Output channel (or, for a layer that gives (N, features), "
        "the feature: a class of the last layer). Default: the largest value there.",
        show_default=False)] = None,
    at: Annotated[str | None, typer.Option(
        "--at", help="Y,X of the number in the layer's output map (0-based). Default: the "
        "centre. Left out for a layer that gives (N, features).", show_default=False)] = None,
    top: Annotated[int, typer.Option(
        "--top", help="Input channels (or inputs of a dense layer) shown one by one; the rest "
        "are summed. The total is always exact.")] = 8,
    trace: Annotated[bool, typer.Option(
        "--trace", help="Also walk back from the number to the input image, strongest "
        "contributor first, one line per layer.")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print one JSON object (keys below) instead of text.")] = False,
    figure: Annotated[Path | None, typer.Option(
        "--figure", help="Also draw it: the photo with the receptive field outlined and, for a "
        "conv, patch × kernel = products (png, jpg, pdf or svg).", show_default=False)] = None,
    force: ForceFile = False,
    flags: ModelFlags = MODEL_DEFAULTS,
    device: ModelDevice = "cpu",
) -> None:
    """Explain one number inside any CNN: how the value at (channel, y, x) of a layer's
    output was made from that layer's input, exactly.

    A conv shows, for its strongest input channels, the receptive patch, the kernel slice and
    the products, then every channel's partial sum ranked, the bias and the total; batch norm
    its formula with the numbers (and the conv before it folded in); activations their formula;
    pools their window (and the max's winner); a dense layer its strongest inputs at their
    place in the flattened map, and for the model's output the softmax share of each class;
    a residual add what each branch gave; a concatenation which input the channel is. Any
    other layer is named, with its input and output values (never guessed). A number that
    follows a conv (a batch norm, an activation, a max pool, ...) is shown step by step from
    that conv, as the page shows it: the conv's arithmetic, then each step in the order the
    layers ran, each step's output the next one's input. Every total is the layer's own number
    to float32 rounding. The receptive field is in the image as the model sees it (resized to
    its input size).

    `--json` prints one object: `model` (what was opened), `image`, `input_shape` ([C, H, W]
    as the model sees it), `explanation`, `chain` and `trace` (null without `--trace`).
    `explanation`
    holds `what` (conv, batchnorm, activation, pool, linear, add, cat, flatten, other),
    `layer`, `kind` (the layer's class or function), `channel`, `y`, `x` (null for (N,
    features)), `shape`, `value` (what the layer's output holds), `total` (convlens'
    arithmetic), `receptive_field` ({top, bottom, left, right} or null), `parts` (the words,
    as `convlens explain --json` gives them) and the numbers of its kind: for a conv `bias`,
    `stride`, `padding` [top, bottom, left, right], `dilation`, `groups`, `padding_mode`,
    `input_rows`, `input_cols`, `padded`, `channels` (the `--top` strongest: `input_channel`,
    `partial_sum`, `patch`, `kernel`, `products`), `rest` ({channels, sum}), `partial_sums`;
    for batch norm `input`, `mean`, `var`, `eps`, `weight`, `bias`, `scale`, `folded`; for an
    activation `function`, `formula`, `input`, `written`; for a pool `pool`, `window` ({rows,
    cols}), `values`, `winner`, `divisor`; for a dense layer `bias`, `map_shape`,
    `map_layer`, `inputs` ({index, at, value, weight, product}), `rest`, `softmax` ({class,
    name, share}), `share`; for an add `branches` ({layer, value}); for a concatenation
    `part`, `source`, `source_channel`, `sizes`; for a flatten `at`, `input_shape`; for any
    other layer `why`, `inputs` ({layer, value}), `children`. `chain` holds `intro` (its
    words, as `parts`), `steps` (from the nearest conv before the number to the number, in
    the order the layers ran, each an object like `explanation`; the last is `explanation`
    itself, the only one for a conv) and `end` (why the steps start where they do; "" at a
    conv). `trace` holds `steps` ({layer, kind, at, value, because}) and `end`.

    Examples:

    * `convlens explain runs/digits digit.png --layer features.0 --channel 3 --at 10,12`
    * `convlens explain runs/pets dog.jpg --layer classifier.fc --channel 1 --trace`
    * `convlens explain torchvision:resnet18 cat.jpg --layer layer1.0.conv2 --at 20,20 --top 5
      --figure conv.png`
    """
    from ..activations import Explainer, check_position, explain_chain
    from ..activations.capture import UnknownLayer
    from ..images import load_image, sample_path
    from ..models import prepare_input
    from ..sizes import parse_at

    if not layer:
        raise ConfigError("give the layer to look into with --layer NAME (see `convlens "
                          "layers MODEL`)")
    if figure is not None:
        _check_figure_path(figure, force)
    if top < 1:
        raise ConfigError(f"--top must be at least 1; got {top}")
    position = parse_at(at, "--at") if at is not None else None
    opened = open_model_for_cli(model, flags, device, quiet=as_json)
    path = image if image is not None else sample_path()
    picture = load_image(path, mode="rgb")
    prepared = prepare_input(picture, opened)
    explainer = Explainer(opened, prepared)
    try:
        out = explainer.output(layer)[0]
    except UnknownLayer as exc:  # where the CLI looks the names up
        raise UnknownLayer(f"{exc} (see `convlens layers MODEL`)") from None
    if out.ndim == 3 and position is None:
        position = (int(out.shape[1]) // 2, int(out.shape[2]) // 2)
    if out.ndim != 3 and position is not None:
        raise ConfigError(f"layer {layer!r} gives {int(out.shape[0])} numbers, not a map: "
                          "leave out --at")
    y, x = position if position is not None else (None, None)
    check_position(layer, tuple(out.shape), 0, y, x)  # a bad --at: one line, before a default
    if channel is None:
        column = out[:, y, x] if out.ndim == 3 else out
        channel = int(column.reshape(-1).argmax())
    chain = explain_chain(explainer, layer, channel, y, x, top=top)
    explanation = chain.last  # the number asked about: explainer.explain(layer, ...)
    walked = explainer.trace(layer, channel, y, x) if trace else None
    if as_json:
        payload = {"model": opened.describe(), "image": printable(path),
                   "input_shape": list(prepared.batch.shape[1:]),
                   "explanation": explanation.to_dict(), "chain": chain.to_dict(),
                   "trace": walked.to_dict() if walked is not None else None}
        console.file.write(json.dumps(payload, indent=1) + "\n")
    else:
        if at is None and out.ndim == 3:
            console.print(f"[dim](no --at given: the centre of the {out.shape[1]}x"
                          f"{out.shape[2]} map)[/]")
        # after a conv: the steps from it, as the page shows them; a conv (or a number
        # whose chain is itself alone) as it is
        print_parts(chain.parts() if len(chain.steps) > 1 else explanation.parts())
        if walked is not None:
            print_parts(walked.parts())
    if figure is not None:
        from ..outputs import save_figure
        from ..plot.activations import plot_activation

        save_figure(plot_activation(explanation, prepared.display), figure)
        (error_console if as_json else console).print(f"wrote {printable(figure)}",
                                                      markup=False)
