"""A classic baseline on the same splits, for honest context: scikit-learn's SVC (RBF kernel)
on the raw pixels, its ``C`` and ``gamma`` chosen on the val split as the CNN's epoch is, and
measured once on the test split as the CNN is."""

from __future__ import annotations

import time

from ..data import ImageSet
from .events import TrainEvents

BASELINE_MAX_IMAGES = 20_000
"""The SVC baseline is offered up to this many training images (it scales quadratically)."""
C_GRID = (1.0, 3.0, 10.0, 30.0)
"""Values of the SVC's ``C`` (inverse regularization) tried on the val split."""
GAMMA_SCALES = (0.5, 1.0, 2.0)
"""Values of ``gamma`` tried, as multiples of scikit-learn's ``"scale"`` default
``1 / (pixels x variance of the pixels)``."""


def svc_baseline(train: ImageSet, val: ImageSet, test: ImageSet,
                 events: TrainEvents | None = None) -> dict | None:
    """Fit an SVC on ``train``'s pixels for every ``C`` x ``gamma`` of the grid, keep the one
    most accurate on ``val`` (the first such, in grid order) and score it once on ``test``:
    ``{"model", "C", "gamma", "val_accuracy", "test_accuracy", "grid", "seconds"}``. ``None``
    (said through ``events``) when the training set is too large for it."""
    if len(train) > BASELINE_MAX_IMAGES:
        if events is not None:
            events.note(f"no SVC baseline: {len(train)} training images is more than "
                        f"{BASELINE_MAX_IMAGES} (it would take long)")
        return None
    from sklearn.svm import SVC

    started = time.perf_counter()
    features = train.floats().flatten(1).numpy()
    labels = train.labels.numpy()
    val_x, val_y = val.floats().flatten(1).numpy(), val.labels.numpy()
    scale = 1.0 / (features.shape[1] * float(features.var()) or 1.0)
    best: tuple[float, float, float, SVC] | None = None
    grid = []
    for c in C_GRID:
        for factor in GAMMA_SCALES:
            svc = SVC(C=c, gamma=factor * scale).fit(features, labels)
            accuracy = float(svc.score(val_x, val_y))
            grid.append({"C": c, "gamma": factor * scale, "val_accuracy": accuracy})
            if best is None or accuracy > best[0]:
                best = (accuracy, c, factor * scale, svc)
    assert best is not None
    accuracy, c, gamma, svc = best
    test_accuracy = float(svc.score(test.floats().flatten(1).numpy(), test.labels.numpy()))
    return {"model": "SVC (scikit-learn, RBF kernel; C and gamma chosen on the val split)",
            "C": c, "gamma": gamma, "val_accuracy": accuracy, "test_accuracy": test_accuracy,
            "grid": grid, "seconds": time.perf_counter() - started}


__all__ = ["BASELINE_MAX_IMAGES", "C_GRID", "GAMMA_SCALES", "svc_baseline"]
