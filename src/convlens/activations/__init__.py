"""Explain any number inside any CNN: how the value at ``(channel, y, x)`` of any layer's
output was made, from that layer's input, exactly.

:func:`explain_activation` (or an :class:`Explainer`, which runs the model once and explains
many numbers) gives one frozen dataclass per layer kind, each with ``parts()`` (the words,
:mod:`convlens.explain.parts`, styled by every renderer) and ``to_dict()``:

* :mod:`.conv` - Conv2d (groups, depthwise, stride, every padding mode, dilation, bias): the
  patch, kernel slice and products per input channel, partial sums ranked, bias, total;
* :mod:`.norm` - BatchNorm2d in eval mode, and the conv before it folded in;
* :mod:`.elementwise` - ReLU, LeakyReLU, GELU, SiLU, Hardswish, Sigmoid, Tanh, ReLU6,
  Hardsigmoid: the formula;
* :mod:`.pool` - max (the winner), avg, adaptive and global pooling: the window;
* :mod:`.linear` - Linear: the strongest inputs at their place in the flattened map, the
  softmax share of each class for the model's output;
* :mod:`.merge` - residual adds (what each branch gave), products (gates), concatenations,
  flatten;
* :mod:`.other` - any other layer: what it is and its input and output values.

:mod:`.capture` records every layer's inputs and output in one forward pass (``torch.fx``,
scoped forward hooks, or the TorchScript graph), :mod:`.ops` reads what a layer computes
(eager, TorchScript, ``torch.export``), :mod:`.core` explains, follows the receptive field
back to the input image, and traces the strongest contributors back to the input;
:mod:`.chain` shows a number as the steps from the nearest conv to it (conv, batch norm,
activation, max pool).
Every total equals what the layer output holds to float32 rounding; where convlens' arithmetic
would not, the layer is shown as it is (never guessed).
"""

from .base import TOP_DEFAULT, Where
from .capture import INPUT, Capture, Record
from .chain import Chain, explain_chain
from .conv import ConvExplanation
from .core import (
    ActivationExplanation,
    Explainer,
    Trace,
    TraceStep,
    check_position,
    explain_activation,
)
from .elementwise import ActivationFunctionExplanation
from .linear import LinearExplanation
from .merge import AddExplanation, ConcatExplanation, FlattenExplanation, MulExplanation
from .norm import BatchNormExplanation
from .ops import LayerOp, module_op
from .other import OtherExplanation
from .pool import PoolExplanation

__all__ = [
    "INPUT",
    "TOP_DEFAULT",
    "ActivationExplanation",
    "ActivationFunctionExplanation",
    "AddExplanation",
    "BatchNormExplanation",
    "Capture",
    "Chain",
    "ConcatExplanation",
    "ConvExplanation",
    "Explainer",
    "FlattenExplanation",
    "LayerOp",
    "LinearExplanation",
    "MulExplanation",
    "OtherExplanation",
    "PoolExplanation",
    "Record",
    "Trace",
    "TraceStep",
    "Where",
    "check_position",
    "explain_activation",
    "explain_chain",
    "module_op",
]
