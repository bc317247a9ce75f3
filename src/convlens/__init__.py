"""convlens: see what a convolutional neural network does to an image, and why.

>>> import convlens
>>> image = convlens.load_image(convlens.sample_path())          # (1, H, W) gray in [0, 1]
>>> kernels = convlens.parse_kernels(["sobel-h", "laplacian", "sobel-v"])
>>> stages = convlens.compute_stages(image, kernels, convlens.LayerConfig(pool=2))
>>> tuple(stages.pooled.shape)
(3, 149, 224)
"""

__version__ = "0.1.0"

from .display import enable_notebook_display as _enable_notebook_display
from .errors import ConfigError, ConvlensError, DataError, ImageError, KernelError, ModelError
from .explain import explain_pixel, explain_pooled, size_chain
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
from .plot import plot_image, plot_kernels, plot_maps, plot_overview
from .runs import load_stages, run_image

# Names from the model side load on first use, so `import convlens` (and every CLI command)
# does not pay for scikit-learn, Captum and the data loaders it may never need.
_LAZY = {
    "ModelInfo": "models", "create_model": "models", "list_models": "models",
    "load_checkpoint": "models", "save_checkpoint": "models",
    "TrainConfig": "train", "evaluate": "train", "predict": "train",
    "open_model": "modelfiles", "OpenedModel": "modelfiles",
    "LayerCapture": "inspect", "feature_maps": "inspect", "layer_table": "inspect",
    "nearest_kernels": "inspect", "explain_class": "saliency",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'convlens' has no attribute {name!r}")


_enable_notebook_display()

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
    "explain_pixel",
    "explain_pooled",
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
    "plot_overview",
    "register_kernel",
    "run_image",
    "sample_path",
    "size_chain",
    "to_gray",
    *_LAZY,
]
