"""Learned filters of a conv layer, and the built-in kernel each one is closest to: the
tutorial's hand-made edge detectors, found inside a trained network."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ModelError
from ..kernels import get_kernel, list_kernels
from ..models import OpenedModel
from .names import check_layer_names, conv_layers, layer_types


def conv_weights(opened: OpenedModel, name: str) -> torch.Tensor:
    """The filters of conv layer ``name`` as float32 ``(K, C, kh, kw)`` on the CPU."""
    check_layer_names(opened, [name])
    module = dict(opened.module.named_modules())[name]
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.ndim != 4:
        kind = layer_types(opened).get(name, "?")
        convs = ", ".join(conv_layers(opened)[:12]) or "none"
        raise ModelError(f"layer {name!r} ({kind}) has no 2-D filters; conv layers: {convs}")
    return weight.detach().to("cpu", torch.float32).clone()


@dataclass(frozen=True)
class KernelMatch:
    """The built-in kernel nearest to one learned filter.

    ``cosine`` is signed: -0.9 means the filter is close to the kernel with its sign flipped
    (the same edge, opposite polarity). ``kernel`` is the built-in weights ``(kh, kw)`` padded
    to the filter's size and multiplied by the sign, as drawn beside the filter.
    """

    filter_index: int
    name: str
    cosine: float
    kernel: np.ndarray

    @property
    def label(self) -> str:
        """The kernel as matched and drawn: ``-name`` when its sign was flipped."""
        return self.name if self.cosine >= 0 else f"-{self.name}"

    @property
    def similarity(self) -> float:
        """Cosine similarity between the filter and :attr:`label`'s kernel (the signed kernel
        drawn beside it): ``|cosine|``, the number every surface shows with the label."""
        return abs(self.cosine)


def nearest_kernels(weights: torch.Tensor | np.ndarray) -> list[KernelMatch | None]:
    """For each filter of ``weights`` ``(K, C, kh, kw)``, the built-in gray kernel with the
    largest ``|cosine similarity|``, the kernel spread over the C input channels the way
    :func:`convlens.kernels.kernel_bank` spreads it (so colour-opponent filters score low).

    Kernels smaller than the filter are zero-padded, centred; larger ones cannot match (None).
    """
    data = np.asarray(weights, dtype=np.float64)
    if data.ndim != 4:
        raise ModelError(f"expected filters (K, C, kh, kw); got shape {data.shape}")
    count, channels, height, width = data.shape
    candidates = _kernel_candidates(height, width)
    if not candidates:
        return [None] * count
    # a kernel spread over C channels is the kernel repeated C times: its dot product with a
    # filter is the kernel's with the filter summed over channels, its norm sqrt(C) times
    summed = data.sum(axis=1).reshape(count, -1)
    bank = np.stack([padded.ravel() for _, padded in candidates], axis=1)
    norms = np.linalg.norm(data.reshape(count, -1), axis=1)
    scale = norms[:, None] * np.sqrt(channels) * np.linalg.norm(bank, axis=0)[None]
    cosines = np.divide(summed @ bank, scale, out=np.zeros((count, len(candidates))),
                        where=norms[:, None] > 0)
    matches: list[KernelMatch | None] = []
    for index, row in enumerate(cosines):
        best = 0  # the first kernel whose |cosine| no later one beats by more than rounding
        for other in range(1, len(candidates)):
            if abs(row[other]) > abs(row[best]) + 1e-12:
                best = other
        name, padded = candidates[best]
        cosine = float(row[best])
        matches.append(KernelMatch(index, name, cosine, padded * (1.0 if cosine >= 0 else -1.0)))
    return matches


def _kernel_candidates(height: int, width: int) -> list[tuple[str, np.ndarray]]:
    """The distinct built-in gray kernels that fit a ``height`` x ``width`` filter, each
    zero-padded to that size, centred."""
    found: list[tuple[str, np.ndarray]] = []
    for name in list_kernels():
        kernel = get_kernel(name)
        if kernel.channels != 1:
            continue
        kh, kw = kernel.size
        if kh > height or kw > width or (height - kh) % 2 or (width - kw) % 2:
            continue
        padded = np.zeros((height, width))
        top, left = (height - kh) // 2, (width - kw) // 2
        padded[top:top + kh, left:left + kw] = kernel.as_2d()
        if not any(np.allclose(padded, other) for _, other in found):
            found.append((name, padded))
    return found
