"""Train and evaluate a CNN image classifier.

A run reads top to bottom in :mod:`.loop` (:func:`fit`); around it, one module per part:

* :mod:`.config` the hyperparameters per kind of data (:data:`PRESETS`) and a run's settings
  (:class:`TrainConfig`);
* :mod:`.runner` the model on its device with its input pipeline, one step, the schedule;
* :mod:`.distributed` the ``torchrun`` / DDP set-up;
* :mod:`.state` the resume state saved after each epoch;
* :mod:`.files` the run folder, the kept model and ``metrics.json`` (:class:`TrainResult`);
* :mod:`.events` what the loop reports (it never prints);
* :mod:`.metrics` the confusion matrix of a model on labelled images (:func:`evaluate`);
* :mod:`.baseline` scikit-learn's SVC on the same split.

The command that also draws the run's figures and prints its table is
:func:`convlens.results.training.train`.
"""

from .config import PRESETS, Preset, TrainConfig
from .events import BatchUpdate, EpochCallback, Tone, TrainEvents
from .files import TrainResult
from .loop import fit
from .metrics import EvalResult, evaluate

__all__ = [
    "PRESETS",
    "BatchUpdate",
    "EpochCallback",
    "EvalResult",
    "Preset",
    "Tone",
    "TrainConfig",
    "TrainEvents",
    "TrainResult",
    "evaluate",
    "fit",
]
