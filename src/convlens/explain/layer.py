"""The one conv -> activation -> pool layer, worked out a few numbers at a time.

What :mod:`.pixel` and :mod:`.pooled` share: the inputs checked and made NumPy, the bias, the
activation, a pooling window and the conv values inside it.
"""

from __future__ import annotations

import numpy as np
import torch

from ..config import LayerConfig
from ..errors import ConfigError
from ..layers import make_activation
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
    """A tensor or array as float32 NumPy on the CPU."""
    if isinstance(array, torch.Tensor):
        return array.detach().to("cpu", torch.float32).numpy()
    return np.asarray(array, dtype=np.float32)


def bias_of(config: LayerConfig, kernel: int) -> float:
    """Kernel ``kernel``'s bias (0 without one)."""
    if config.bias is None:
        return 0.0
    if len(config.bias) <= kernel:
        raise ConfigError(f"bias has {len(config.bias)} values; kernel {kernel} has none")
    return float(config.bias[kernel])


def activate(config: LayerConfig, values: np.ndarray) -> np.ndarray:
    """The layer's own activation module applied to ``values`` (float64)."""
    module = make_activation(config.activation)
    with torch.no_grad():
        return module(torch.from_numpy(np.asarray(values, dtype=np.float64))).numpy()


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
