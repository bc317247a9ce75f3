"""A classic baseline on the same split, for honest context: scikit-learn's SVC (RBF kernel)
on the raw pixels."""

from __future__ import annotations

import time

from ..data import DataSplits
from .events import TrainEvents

BASELINE_MAX_IMAGES = 20_000
"""The SVC baseline is offered up to this many training images (it scales quadratically)."""


def svc_baseline(splits: DataSplits, events: TrainEvents | None = None) -> dict | None:
    """Fit an SVC on ``splits.train``'s pixels and score it on ``splits.val``:
    ``{"model", "val_accuracy", "seconds"}``, or ``None`` (said through ``events``) when the
    training set is too large for it."""
    if len(splits.train) > BASELINE_MAX_IMAGES:
        if events is not None:
            events.note(f"no SVC baseline: {len(splits.train)} training images is more than "
                        f"{BASELINE_MAX_IMAGES} (it would take long)")
        return None
    from sklearn.svm import SVC

    started = time.perf_counter()
    features = splits.train.floats().flatten(1).numpy()
    svc = SVC().fit(features, splits.train.labels.numpy())
    accuracy = float(svc.score(splits.val.floats().flatten(1).numpy(),
                               splits.val.labels.numpy()))
    return {"model": "SVC (scikit-learn, RBF kernel, defaults)", "val_accuracy": accuracy,
            "seconds": time.perf_counter() - started}


__all__ = ["BASELINE_MAX_IMAGES", "svc_baseline"]
