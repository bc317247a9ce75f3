"""What ``convlens saliency`` computes for one image, and the files it writes.

:func:`saliency_image` explains one class of one image by each chosen method
(:func:`convlens.saliency.explain_class`); :meth:`SaliencyResult.to_dict` is the JSON
(``saliency.json`` without its version, command and file list) and :meth:`SaliencyResult.write`
writes the result folder all at once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..images import load_image
from ..inspect import outputs_dict
from ..outputs import printable, save_figure, staged_dir, write_file, write_text
from ..plot.models import plot_predictions, plot_saliency
from ..saliency import (
    IG_STEPS,
    ClassSaliency,
    SaliencyMethod,
    explain_class,
    guided_backprop_unavailable,
    parse_methods,
)
from ..version import __version__

if TYPE_CHECKING:
    from ..models import OpenedModel

SALIENCY_FILE = "saliency.json"
ARRAYS_FILE = "saliency.npz"
"""``input`` ``(C, H, W)`` as the model saw it and one ``(H, W)`` heatmap per method key
(``gradcam``, ``integrated_gradients``, ``guided_backprop``), float32 (the npz contract)."""
DEFAULT_METHODS = (SaliencyMethod.GRADCAM, SaliencyMethod.INTEGRATED_GRADIENTS)


@dataclass
class SaliencyResult:
    """Saliency of one image (``source``, its path as given) through one model (``model``:
    its ``source`` and ``kind``): the class explained, the predictions and one map per method
    (``saliency``); ``notes`` say what was left out and why (guided backprop on a model
    without ``nn.ReLU`` modules, when every method was asked for)."""

    source: str
    model: dict[str, Any]
    saliency: ClassSaliency
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The model, the image, the class explained (``index``, ``label``, ``probability``),
        the predictions and per method its layer, note, heatmap shape and maximum. The model's
        ``outputs`` say, of a model that returns several, which holds the class scores
        (``None`` for a model with one)."""
        result = self.saliency
        return {
            "model": {**self.model, "outputs": outputs_dict(result.outputs)},
            "image": self.source,
            "class": {"index": result.target, "label": result.label,
                      "probability": result.probability},
            "predictions": [asdict(p) for p in result.predictions or []],
            "methods": [{"method": item.method.value, "layer": item.layer, "note": item.note,
                         "shape": list(item.heatmap.shape), "max": float(item.heatmap.max())}
                        for item in result.maps],
        }

    def write(self, folder: Path, *, force: bool = False, command: str | None = None
              ) -> list[Path]:
        """Write the result folder all at once (an error leaves nothing): ``saliency.png``
        (per method the heatmap and the heatmap over the input), ``predictions.png``,
        :data:`ARRAYS_FILE` and :data:`SALIENCY_FILE` (:meth:`to_dict` with the version,
        ``command`` and the file list). Returns the paths written, in ``folder``."""
        result = self.saliency
        name = printable(Path(self.source).name)
        subtitle = printable(f"{name} through {Path(self.model['source']).name}")
        arrays: dict[str, Any] = {"input": result.prepared.display.numpy().astype(np.float32)}
        arrays.update({item.method.key: item.heatmap.numpy().astype(np.float32)
                       for item in result.maps})
        with staged_dir(folder, force) as stage:
            written = [save_figure(plot_saliency(result, subtitle), stage / "saliency.png")]
            if result.predictions:
                written.append(save_figure(
                    plot_predictions(result.predictions,
                                     f"{name}: top {len(result.predictions)} predictions",
                                     highlight=result.target),
                    stage / "predictions.png"))
            written.append(write_file(stage / ARRAYS_FILE, lambda path: np.savez(path, **arrays)))
            summary = {"convlens_version": __version__, "command": command, **self.to_dict(),
                       "files": sorted([*(path.name for path in written), SALIENCY_FILE])}
            written.append(write_text(stage / SALIENCY_FILE,
                                      json.dumps(summary, indent=2) + "\n"))
        return [Path(folder) / path.name for path in written]

    def _repr_png_(self) -> bytes:
        from ..display import saliency_png

        return saliency_png(self.saliency)


def saliency_image(
    opened: OpenedModel,
    image: torch.Tensor | str | Path,
    methods: Sequence[str | SaliencyMethod] = DEFAULT_METHODS,
    target: str | int | None = None,
    layer: str | None = None,
    steps: int = IG_STEPS,
    top_k: int = 5,
    source: str | None = None,
) -> SaliencyResult:
    """Explain class ``target`` (a name or an index; default: the top prediction) of ``image``
    (a file, loaded as RGB, or a tensor ``(C, H, W)`` in [0, 1]) by each of ``methods``
    (``all``: every method this model allows; guided backprop left out, with a note, where it
    cannot run); Grad-CAM at ``layer`` (default: the last conv layer); ``top_k`` predictions.
    ``source`` names a tensor ``image`` in the results."""
    chosen = parse_methods(methods)
    notes = []
    reason = guided_backprop_unavailable(opened)
    if reason and "all" in [str(getattr(m, "value", m)).lower() for m in methods]:
        chosen = [m for m in chosen if m is not SaliencyMethod.GUIDED_BACKPROP]
        notes.append(f"{reason}: skipped")
    if isinstance(image, torch.Tensor):
        picture, source = image, source or "image"
    else:
        picture, source = load_image(image, mode="rgb"), source or str(image)
    result = explain_class(opened, picture, chosen, target, layer, steps, top_k)
    return SaliencyResult(source, {"source": opened.source, "kind": opened.kind.value}, result,
                          notes)


__all__ = ["ARRAYS_FILE", "SALIENCY_FILE", "SaliencyResult", "saliency_image"]
