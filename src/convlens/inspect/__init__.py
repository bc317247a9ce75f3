"""Look inside a trained CNN: its layers, learned filters and the feature maps of an image.

One module per idea:

* :mod:`.hooks` - :class:`LayerCapture`, the context manager that owns every hook convlens
  puts on a model (removed, and the train/eval mode restored, whatever happens), reading
  TorchScript layers off the compiled graph (:class:`ScriptTap`);
* :mod:`.names` - layers by name: :func:`layer_types`, :func:`conv_layers`, and
  :func:`check_layer_names`, whose error lists the valid names;
* :mod:`.maps` - :func:`feature_maps` of one image at named layers (moved to the CPU and
  area-averaged to :data:`STORED_MAX_SIDE` unless full size is asked for, statistics at full
  resolution), and :func:`top_images`, the data set images that most activate one channel;
* :mod:`.table` - :func:`layer_table`: every layer with output shape, parameters and receptive
  field (from :mod:`.fields`); when the model fails, the rows up to the failing layer and what
  mismatched (e.g. "flatten gives 1280 features, but classifier (Linear) expects 640") and the
  input size to use (:class:`SizeHint`); of a model with several outputs, which one holds the
  class scores (:func:`model_outputs`, :func:`outputs_dict`);
* :mod:`.running` - :func:`run_model`, which turns a failing forward into that one line
  (:func:`diagnose`);
* :mod:`.filters` - :func:`conv_weights`, and :func:`nearest_kernels`: the built-in kernel each
  learned filter is closest to by cosine similarity;
* :func:`top_predictions` (from :mod:`convlens.models.predictions`), the top-k classes with
  probabilities.
"""

from ..models.predictions import Prediction, top_predictions
from .filters import KernelMatch, conv_weights, nearest_kernels
from .hooks import LayerCapture, ScriptTap
from .maps import (
    STORED_MAX_SIDE,
    Activations,
    ChannelStats,
    FeatureMaps,
    TopImage,
    feature_maps,
    tensor_bytes,
    top_images,
)
from .names import LAYER_LIST, check_layer_names, conv_layers, default_layer, layer_types
from .running import diagnose, run_model
from .table import (
    LayerRow,
    LayerTable,
    LayerTableError,
    SizeHint,
    layer_table,
    model_outputs,
    outputs_dict,
)

__all__ = [
    "LAYER_LIST",
    "STORED_MAX_SIDE",
    "Activations",
    "ChannelStats",
    "FeatureMaps",
    "KernelMatch",
    "LayerCapture",
    "LayerRow",
    "LayerTable",
    "LayerTableError",
    "Prediction",
    "ScriptTap",
    "SizeHint",
    "TopImage",
    "check_layer_names",
    "conv_layers",
    "conv_weights",
    "default_layer",
    "diagnose",
    "feature_maps",
    "layer_table",
    "layer_types",
    "model_outputs",
    "nearest_kernels",
    "outputs_dict",
    "run_model",
    "tensor_bytes",
    "top_images",
    "top_predictions",
]
