"""Which input size to suggest for a model that takes a range of sizes.

A model that ends in a dense layer takes every square side whose feature maps flatten to the
number of features it expects: MTCNN's ONet, made for 48x48, takes 42 to 49. The smallest (42)
is a poor hint. :func:`preferred_side` prefers the size the model declares, then a size that
leaves no pixel uncovered in its conv and pool layers, and of those a size models are commonly
made for.

>>> preferred_side(range(42, 50))
(48, 'a common input size')
>>> preferred_side(range(42, 50), declared=45)
(45, 'the size the model declares')
>>> preferred_side(range(9, 12), layers="conv3, pool2")
(10, 'the smallest size that leaves no pixel uncovered')
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..errors import ConfigError, ModelError
from ..sizes import LayerSpec, SizeChain, size_chain

COMMON_SIDES = (28, 32, 48, 64, 96, 112, 128, 160, 192, 224, 227, 256, 299, 320, 384, 448, 512)
"""Square input sides image models are commonly made for (MNIST 28, CIFAR 32, MTCNN 48, ...,
ImageNet 224 and 299)."""


def preferred_side(
    sides: Iterable[int],
    declared: int | tuple[int, int] | None = None,
    layers: str | Sequence[LayerSpec] | None = None,
) -> tuple[int, str]:
    """Of the square ``sides`` (pixels) a model fits at, the one to suggest, and why.

    In order: the ``declared`` side where it fits; else, of the sides at which the model's
    conv and pool ``layers`` leave no input pixel uncovered (every side when ``layers`` is not
    known), a common input size (:data:`COMMON_SIDES`), else the smallest.
    """
    fitting = sorted(set(int(side) for side in sides))
    if not fitting:
        raise ModelError("no input size fits the model")
    if isinstance(declared, tuple):
        declared = declared[0] if declared[0] == declared[1] else None
    if declared is not None and declared in fitting:
        return declared, "the size the model declares"
    covered = fitting
    if layers is not None:
        covered = [side for side in fitting if _covers_every_pixel(side, layers)] or fitting
    common = [side for side in covered if side in COMMON_SIDES]
    if common:
        return common[0], "a common input size"
    if covered is not fitting:
        return covered[0], "the smallest size that leaves no pixel uncovered"
    return covered[0], "the smallest size that fits"


def _covers_every_pixel(side: int, layers: str | Sequence[LayerSpec]) -> bool:
    """Whether no layer of the chain drops input pixels at ``side`` (floor division with a
    remainder, or a ceil-mode window PyTorch drops)."""
    try:
        chain: SizeChain = size_chain(side, layers)
    except ConfigError:
        return False
    for step in chain.steps:
        for _, axis in step.axes():
            left = axis.numerator % axis.stride
            if left and not (axis.ceil_mode and -(-axis.numerator // axis.stride) + 1
                             == axis.size_out):
                return False
    return True


__all__ = ["COMMON_SIDES", "preferred_side"]
