"""The one conv -> activation -> pool layer, worked out a few numbers at a time.

What :mod:`.pixel` and :mod:`.pooled` share: the inputs checked and made NumPy, the bias, the
activation, a pooling window and the conv values inside it. All of it is NumPy on the few cells
an explanation reads, so explaining a typed patch loads no tensor library; a PyTorch tensor is
taken as well (read once into NumPy).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np

from ..config import LEAKY_SLOPE, Activation, LayerConfig
from ..errors import ConfigError
from ..sizes import check_fits
from .patches import gather_patches

RAW_SCALE = 255.0
"""What 1.0 of a normalized value is in raw units (8-bit pixel values)."""


def prepare(image, weights, config: LayerConfig, kernel: int):
    """Validate and turn the inputs into NumPy ``(C, H, W)`` and ``(K, C, kh, kw)``."""
    if not isinstance(config, LayerConfig):
        raise ConfigError(f"expected a LayerConfig; got {type(config).__name__}")
    data = as_numpy(image)
    bank = as_numpy(weights)
    if data.ndim != 3:
        raise ConfigError(f"expected an image (C, H, W); got shape {data.shape}")
    if bank.ndim != 4:
        raise ConfigError(f"expected kernel weights (K, C, kh, kw); got shape {bank.shape}")
    if bank.shape[1] != data.shape[0]:
        raise ConfigError(
            f"the kernels have {bank.shape[1]} input channels but the image has {data.shape[0]}"
        )
    count = bank.shape[0]
    if isinstance(kernel, bool) or not isinstance(kernel, (int, np.integer)) or not (
        0 <= kernel < count
    ):
        raise ConfigError(f"kernel index must be 0..{count - 1}; got {kernel!r}")
    steps = check_fits(config, data.shape[1], data.shape[2], (bank.shape[2], bank.shape[3]))
    return data, bank, steps


def as_numpy(array) -> np.ndarray:
    """A tensor or array as float32 NumPy on the CPU (without importing PyTorch: a tensor can
    only exist once it is loaded)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(array, torch.Tensor):
        return array.detach().to("cpu", torch.float32).numpy()
    return np.asarray(array, dtype=np.float32)


def bias_of(config: LayerConfig, kernel: int) -> float:
    """Kernel ``kernel``'s bias (0 without one)."""
    if config.bias is None:
        return 0.0
    if len(config.bias) <= kernel:
        raise ConfigError(f"bias has {len(config.bias)} values; kernel {kernel} has none")
    return float(config.bias[kernel])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-x) -> inf for x < -709 gives 0, as torch's does
        return 1.0 / (1.0 + np.exp(-x))


ACTIVATIONS: dict[Activation, Callable[[np.ndarray], np.ndarray]] = {
    Activation.RELU: lambda x: np.maximum(x, 0.0),
    Activation.LEAKY_RELU: lambda x: np.where(x > 0, x, x * LEAKY_SLOPE),
    Activation.TANH: np.tanh,
    Activation.SIGMOID: _sigmoid,
    Activation.ABS: np.abs,
    Activation.NONE: lambda x: x.copy(),
}
"""Each activation's formula on NumPy values; equal to the layer's ``nn.Module``
(:func:`convlens.reference.make_activation`) to rounding, which the tests check kind by kind."""


def activate(config: LayerConfig, values: np.ndarray) -> np.ndarray:
    """The layer's activation applied to ``values``, as float64 of the same shape."""
    return ACTIVATIONS[config.activation](np.asarray(values, dtype=np.float64))


def pool_window(config: LayerConfig, cell: tuple[int, int]) -> tuple[list[int], list[int]]:
    """The conv rows and cols of pooled cell ``cell``'s window."""
    size = config.pool or 1
    stride = config.effective_pool_stride or size
    return ([cell[0] * stride + i for i in range(size)],
            [cell[1] * stride + j for j in range(size)])


def window_dict(window: tuple[list[int], list[int]]) -> dict:
    """A window as JSON: its bounds and its rows and cols."""
    rows, cols = window
    return {"top": rows[0], "bottom": rows[-1], "left": cols[0], "right": cols[-1],
            "rows": list(rows), "cols": list(cols)}


def conv_block(data, bank, config, kernel, window, kernel_size) -> np.ndarray:
    """Conv values (with bias) at the ``rows`` x ``cols`` of ``window``, float64."""
    patches = gather_patches(data, config, kernel_size, *window).astype(np.float64)
    conv = np.einsum("abckl,ckl->ab", patches, bank[kernel].astype(np.float64))
    return conv + bias_of(config, kernel)


def layer_words(config: LayerConfig) -> str:
    """``conv (stride 1, padding 0 zeros, dilation 1), relu, max pool 2 stride 2``: a layer's
    settings in a few words."""
    pool = (f", {config.pool_type.value} pool {config.pool} stride "
            f"{config.effective_pool_stride}" if config.pool else ", no pool")
    return (f"conv (stride {config.stride}, padding {config.padding} "
            f"{config.padding_mode.value}, dilation {config.dilation}), "
            f"{config.activation.value}{pool}")


__all__ = ["RAW_SCALE", "layer_words"]
