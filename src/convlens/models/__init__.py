"""CNN classifiers: the registry (``tinyvgg``, ``lenet``, ``resnet9``) and checkpoints.

>>> from convlens.models import create_model, list_models
>>> list_models()
['lenet', 'resnet9', 'tinyvgg']
>>> model = create_model("tinyvgg", in_channels=1, num_classes=10, input_size=(8, 8))
>>> [name for name, _ in model.named_children()]
['features', 'classifier']
"""

from . import zoo as _zoo  # noqa: F401  (registers the architectures)
from .checkpoint import (
    INFO_FILE,
    WEIGHTS_FILE,
    ModelInfo,
    load_checkpoint,
    match_channels,
    preprocess,
    read_info,
    resize_exact,
    save_checkpoint,
    unwrap_model,
)
from .handle import PreparedInput, eval_mode, prepare_input, strip_wrapper_prefixes
from .predictions import Prediction, predict, top_predictions
from .registry import (
    ModelEntry,
    check_settings,
    create_model,
    get_model_entry,
    list_models,
    register_model,
)

__all__ = [
    "INFO_FILE",
    "WEIGHTS_FILE",
    "ModelEntry",
    "ModelInfo",
    "Prediction",
    "PreparedInput",
    "check_settings",
    "create_model",
    "eval_mode",
    "get_model_entry",
    "list_models",
    "load_checkpoint",
    "match_channels",
    "predict",
    "prepare_input",
    "preprocess",
    "read_info",
    "register_model",
    "resize_exact",
    "save_checkpoint",
    "strip_wrapper_prefixes",
    "top_predictions",
    "unwrap_model",
]
