"""convlens: see what a convolutional neural network does to an image, and why.

>>> import convlens
>>> image = convlens.load_image(convlens.sample_path())          # (1, H, W) gray in [0, 1]
>>> kernels = convlens.parse_kernels(["sobel-h", "laplacian", "sobel-v"])
>>> stages = convlens.compute_stages(image, kernels, convlens.LayerConfig(pool=2))
>>> tuple(stages.pooled.shape)
(3, 149, 224)
"""

__version__ = "0.1.0"

from .errors import ConfigError, ConvlensError, DataError, ImageError, KernelError, ModelError
from .images import ColorMode, load_image, sample_path, to_gray
from .kernels import (
    Kernel,
    get_kernel,
    kernel_bank,
    list_kernels,
    parse_kernel,
    parse_kernels,
    register_kernel,
)
from .layers import (
    Activation,
    FixedConvLayer,
    LayerConfig,
    PaddingMode,
    PoolType,
    Stages,
    compute_stages,
    output_size,
)
from .plot import plot_image, plot_kernels, plot_maps
from .runs import load_stages, run_image

__all__ = [
    "Activation",
    "ColorMode",
    "ConfigError",
    "ConvlensError",
    "DataError",
    "FixedConvLayer",
    "ImageError",
    "Kernel",
    "KernelError",
    "LayerConfig",
    "ModelError",
    "PaddingMode",
    "PoolType",
    "Stages",
    "__version__",
    "compute_stages",
    "get_kernel",
    "kernel_bank",
    "list_kernels",
    "load_image",
    "load_stages",
    "output_size",
    "parse_kernel",
    "parse_kernels",
    "plot_image",
    "plot_kernels",
    "plot_maps",
    "register_kernel",
    "run_image",
    "sample_path",
    "to_gray",
]
