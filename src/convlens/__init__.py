"""convlens: see what a convolutional neural network does to an image, and why.

>>> import convlens
>>> image = convlens.load_image(convlens.sample_path())          # (1, H, W) gray in [0, 1]
>>> kernels = convlens.parse_kernels(["sobel-h", "laplacian", "sobel-v"])
>>> stages = convlens.compute_stages(image, kernels, convlens.LayerConfig(pool=2))
>>> tuple(stages.pooled.shape)
(3, 149, 224)
"""

import sys as _sys

from .errors import ConfigError, ConvlensError, DataError, ImageError, KernelError, ModelError
from .version import __version__

# Every other name loads with its module on first use, so `import convlens` (and so every CLI
# command, and `convlens --help`) does not pay for torch, matplotlib, scikit-learn or Captum
# before it needs them.
_EXPORTS = {
    "config": ("Activation", "LayerConfig", "PaddingMode", "PoolType"),
    "explain": ("explain_pixel", "explain_pooled"),
    "images": ("ColorMode", "bundled_model_path", "load_image", "load_image_array", "sample_path",
               "to_gray"),
    "kernels": ("Kernel", "get_kernel", "kernel_bank", "list_kernels", "parse_kernel",
                "parse_kernels", "register_kernel"),
    "layers": ("Stages", "compute_stages"),
    "reference": ("FixedConvLayer",),
    "sizes": ("output_size", "size_chain"),
    "plot": ("plot_image", "plot_kernels", "plot_maps", "plot_overview"),
    "runs": ("load_stages", "run_image"),
    "models": ("ModelInfo", "OpenedModel", "create_model", "list_models", "load_checkpoint",
               "open_model", "predict", "save_checkpoint"),
    "train": ("TrainConfig", "evaluate"),
    "inspect": ("LayerCapture", "feature_maps", "layer_table", "nearest_kernels"),
    "saliency": ("explain_class",),
}
_LAZY = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str):
    import importlib
    import importlib.util

    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}"):
        return importlib.import_module(f".{name}", __name__)  # a submodule, e.g. convlens.plot
    raise AttributeError(f"module 'convlens' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if "IPython" in _sys.modules:  # in a notebook, returned figures draw themselves inline
    from .display import enable_notebook_display as _enable_notebook_display

    _enable_notebook_display()

__all__ = ["ConfigError", "ConvlensError", "DataError", "ImageError", "KernelError", "ModelError",
           "__version__", *_LAZY]
