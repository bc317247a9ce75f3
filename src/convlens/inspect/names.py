"""A model's layers by name: their types, the conv layers, and a clear error for a wrong name."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import torch
import torch.nn as nn

from ..errors import ModelError, Option
from ..models import OpenedModel

CONV_TYPES = ("Conv2d", "LazyConv2d")
LAYERS = Option("layers=[NAME]", "--layer NAME", "\"Layer to look into\"")
"""How each surface names the layers to look at."""
LAYER_LIST = Option("layer_table(model)", "`convlens layers MODEL`",
                    "the \"Layer to look into\" menu")
"""Where each surface lists a model's layers: :func:`convlens.inspect.layer_table`, the
``layers`` command, the page's layer menu."""
MAX_NAMES_LISTED = 60
"""Layer names an unknown-layer error lists before it says how many there are in all."""


def layer_types(opened: OpenedModel) -> dict[str, str]:
    """Every named layer (the root excluded) -> its class name, in registration order."""
    types = {}
    for name, module in opened.module.named_modules():
        if not name:
            continue
        if isinstance(module, torch.jit.ScriptModule):
            types[name] = str(module.original_name)
        else:
            types[name] = opened.layer_types.get(name, type(module).__name__)
    return types


def conv_layers(opened: OpenedModel) -> list[str]:
    """Names of the 2-D convolution layers, in registration order."""
    modules = dict(opened.module.named_modules())
    return [name for name, kind in layer_types(opened).items()
            if kind in CONV_TYPES or isinstance(modules[name], nn.Conv2d)]


def check_layer_names(opened: OpenedModel, names: Sequence[str]) -> list[str]:
    """Return ``names`` if each is a layer of the model; else a clear error listing the valid
    ones (closest first)."""
    valid = list(layer_types(opened))
    for name in names:
        if name not in valid:
            close = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            shown = ", ".join(valid[:MAX_NAMES_LISTED])
            if len(valid) > MAX_NAMES_LISTED:
                shown += f", ... ({len(valid)} in all)"
            raise ModelError(f"no layer named {name!r} in this model{hint}; the layers are: "
                             f"{shown or '(none)'} (see {LAYER_LIST.python})",
                             options=[LAYER_LIST])
    if not names:
        raise ModelError(f"no layer given; name one with {LAYERS.python} (see "
                         f"{LAYER_LIST.python})", options=[LAYERS, LAYER_LIST])
    return list(names)


def default_layer(opened: OpenedModel) -> str:
    """The first conv layer: the one whose filters look most like the tutorial's kernels."""
    convs = conv_layers(opened)
    if not convs:
        raise ModelError(f"this model has no Conv2d layer; name a layer with {LAYERS.python} "
                         f"(see {LAYER_LIST.python})", options=[LAYERS, LAYER_LIST])
    return convs[0]
