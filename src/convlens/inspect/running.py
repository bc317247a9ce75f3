"""Run a model through a :class:`LayerCapture`; when the user's model fails on the input (a
shape mismatch), say in one line which layer mismatched and what input size it expects."""

from __future__ import annotations

from typing import Any

import torch

from ..errors import ConvlensError, ModelError, Option
from ..models import OpenedModel
from .hooks import LayerCapture
from .table import error_text, layer_table


def run_model(opened: OpenedModel, capture: LayerCapture, batch: torch.Tensor) -> Any:
    """``capture(batch)``; a failure from a shape mismatch becomes a :class:`ModelError`
    saying which layer mismatched and what input size the model expects."""
    try:
        return capture(batch)
    except ConvlensError:
        raise
    except Exception as exc:  # the user's model code failed: say where and why, in one line
        raise diagnose(opened, tuple(batch.shape), exc) from None


def diagnose(opened: OpenedModel, shape: tuple[int, ...], exc: BaseException | None = None
             ) -> ModelError:
    """Why the model fails on an input of ``shape`` ``(N, C, H, W)``, as one line; where a
    size fits, the error's option says how each surface asks for it
    (``input_size=(32, 32)``, ``--input-size 32x32``)."""
    table = layer_table(opened, (shape[-2], shape[-1]), in_channels=shape[1], strict=False)
    what = table.failure or (error_text(exc) if exc else "it fails")
    text = f"the model does not fit a {'x'.join(map(str, shape[1:]))} input: {what}"
    if opened.fixed_input and opened.input_size is not None:
        size = "x".join(map(str, opened.input_size))
        return ModelError(f"{text}; this exported program takes {opened.in_channels}x{size} "
                          "inputs only")
    if table.size_hint is not None:
        hint = table.size_hint
        side = hint.side
        fits = Option(f"input_size=({side}, {side})", f"--input-size {side}x{side}")
        return ModelError(f"{text}; {hint.sentence()}; it expects {side}x{side} images: pass "
                          f"{fits.python}", options=[fits])
    if opened.input_size is not None:
        size = "x".join(map(str, opened.input_size))
        return ModelError(f"{text}; it was made for {size} inputs")
    return ModelError(text)
