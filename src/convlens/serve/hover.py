"""The hover panel: one conv, activated or pooled pixel worked out, and the command that
prints it.

The arithmetic and the words are :func:`convlens.explain.explain_pixel` /
:func:`~convlens.explain.explain_pooled` (the numbers ``convlens explain`` prints; the page
styles the ``parts`` of their JSON). This module adds ``command`` (:mod:`.reproduce`) and
``text``, each number as the library formats it (raw 0-255 values, kernel weights, six digits),
for API clients that want the numbers as text without reading the parts.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..config import LayerConfig
from ..errors import ConfigError
from ..explain import explain_pixel, explain_pooled
from ..explain.parts import six as _six
from ..kernels import Kernel, kernel_bank
from ..kernels import unique_names as unique_kernel_names
from ..numbers import format_number, format_raw
from .reproduce import explain_command, image_argument, original_size
from .schemas import ExplainIn
from .session import Session


def explain_message(session: Session, body: ExplainIn) -> dict:
    """The JSON of ``POST /api/explain``: the explanation's ``to_dict()``, its ``kind``
    (``pixel`` or ``pooled``) and ``text``, the same numbers formatted for the panel, and
    ``command``: the ``convlens explain`` command that prints the same numbers (its ``text``,
    and ``where`` it runs when it names an uploaded file)."""
    image, kernels, config = session.inputs(body)
    if body.kernel >= len(kernels):
        raise ConfigError(f"kernel index must be 0..{len(kernels) - 1}; got {body.kernel}")
    bank = kernel_bank(kernels, image.shape[0])
    name = unique_kernel_names(kernels)[body.kernel]
    command = _command(session, body, kernels[body.kernel], config)
    if body.stage == "pooled":
        pooled = explain_pooled(image, bank, config, body.kernel, body.row, body.col,
                                kernel_name=name)
        data = pooled.to_dict()
        data["kind"] = "pooled"
        data["text"] = {"conv_values": _texts(pooled.conv_values, _six),
                        "values": _texts(pooled.values, _six), "value": _six(pooled.value)}
        data["command"] = command
        return data
    pixel = explain_pixel(image, bank, config, body.kernel, body.row, body.col,
                          kernel_name=name, flip=body.flip)
    data = pixel.to_dict()
    data["kind"] = "pixel"
    data["stage"] = body.stage
    data["text"] = {
        "patch_raw": _texts(pixel.patch.astype(np.float64) * pixel.scale, format_raw),
        "kernel": _texts(pixel.weights, _weight),
        "products_raw": _texts(pixel.products * pixel.scale, format_raw),
        "sum_lines": pixel.sum_lines(),
        "sum": _six(pixel.total), "conv": _six(pixel.value),
        "activated": _six(pixel.activated), "bias": _six(pixel.bias),
        "pooled": [{**cell, "value_text": _six(cell["value"])} for cell in pixel.pooled],
    }
    if "convolution" in data:
        data["text"]["flipped_kernel"] = _texts(pixel.flipped_weights, _weight)
        data["text"]["convolution"] = _six(data["convolution"]["conv"])
    data["command"] = command
    return data


def _command(session: Session, body: ExplainIn, kernel: Kernel, config: LayerConfig) -> dict:
    """The ``convlens explain`` command of the hovered pixel (:mod:`.reproduce`), with
    ``--max-side`` when the page shrank the image, and where to run it."""
    stored = session.images.get(body.image)
    shrunk = body.max_side is not None and max(original_size(stored.path)) > body.max_side
    argument = image_argument(stored.id, stored.name, stored.path)
    text = explain_command(argument, mode=body.mode, max_side=body.max_side if shrunk else None,
                           kernel=kernel, config=config, at=(body.row, body.col),
                           pooled=body.stage == "pooled", flip=body.flip)
    uploaded = argument is not None and argument.endswith(stored.name)
    return {"text": text, "where": f"in the folder that holds {stored.name}" if uploaded
            else None}


def _texts(values: np.ndarray, formatter: Callable[[float], str]) -> list:
    """``values`` of any shape as nested lists of ``formatter``'s text."""
    if np.ndim(values) == 0:
        return formatter(float(values))  # type: ignore[return-value]
    return [_texts(item, formatter) for item in values]


def _weight(value: float) -> str:
    return format_number(value, 4)
