"""CNN classifiers: the registry (``tinyvgg``, ``lenet``, ``resnet9``), checkpoints, and any
other model opened as one handle.

* :mod:`.info` - :class:`ModelInfo`, what is known about a model (its input, its classes);
* :mod:`.handle` - :class:`OpenedModel` (a module with its :class:`ModelInfo`),
  :func:`prepare_input`, :func:`eval_mode`, :func:`strip_wrapper_prefixes`;
* :mod:`.checkpoint` - :func:`save_checkpoint`, :func:`load_checkpoint` (-> :class:`OpenedModel`);
* :mod:`.opening` - :func:`open_model`: checkpoints, TorchScript, ``.pt2``, factories, registry
  names, torchvision, pickles, with the trust rules; :mod:`.audit` checks a ``.pt2`` before it
  loads and :mod:`.weights` reads plain state dicts;
* :mod:`.predictions` - :func:`predict` and :func:`top_predictions`; :mod:`.heads` picks the
  output that holds the class scores of a model that returns several (:func:`choose_output`);
* :mod:`.fitting` - :func:`preferred_side`, the input size to suggest of those a model takes;
* :mod:`.registry` and :mod:`.zoo` - the architectures.

>>> from convlens.models import create_model, list_models
>>> list_models()
['lenet', 'resnet9', 'tinyvgg']
>>> model = create_model("tinyvgg", in_channels=1, num_classes=10, input_size=(8, 8))
>>> [name for name, _ in model.named_children()]
['features', 'classifier']
"""

from . import zoo as _zoo  # noqa: F401  (registers the architectures)
from .audit import audit_export_archive
from .checkpoint import (
    INFO_FILE,
    WEIGHTS_FILE,
    load_checkpoint,
    read_info,
    save_checkpoint,
    unwrap_model,
)
from .fitting import preferred_side
from .handle import (
    ModelKind,
    OpenedModel,
    PreparedInput,
    eval_mode,
    prepare_input,
    strip_wrapper_prefixes,
    with_input_size,
)
from .heads import ChosenOutput, OutputPart, choose_output
from .info import ModelInfo
from .opening import TRUST_HINT, open_model
from .predictions import Prediction, predict, top_predictions
from .registry import (
    ModelEntry,
    check_settings,
    create_model,
    get_model_entry,
    list_models,
    register_model,
)
from .weights import load_state_dict

__all__ = [
    "INFO_FILE",
    "TRUST_HINT",
    "WEIGHTS_FILE",
    "ChosenOutput",
    "ModelEntry",
    "ModelInfo",
    "ModelKind",
    "OpenedModel",
    "OutputPart",
    "Prediction",
    "PreparedInput",
    "audit_export_archive",
    "check_settings",
    "choose_output",
    "create_model",
    "eval_mode",
    "get_model_entry",
    "list_models",
    "load_checkpoint",
    "load_state_dict",
    "open_model",
    "predict",
    "preferred_side",
    "prepare_input",
    "read_info",
    "register_model",
    "save_checkpoint",
    "strip_wrapper_prefixes",
    "top_predictions",
    "unwrap_model",
    "with_input_size",
]
