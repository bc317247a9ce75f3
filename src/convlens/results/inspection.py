"""What ``convlens inspect`` computes for one image, and the files it writes.

:func:`inspect_image` runs one image through an opened model and gathers, once, everything the
command and the page's model panel show: the feature maps of the chosen layers with their
statistics, the top predictions, the learned filters of the conv layers among them, the
built-in kernel nearest to each filter of one conv layer, and optionally the data set images
that most activate one channel. :meth:`Inspection.to_dict` is the JSON (``inspect.json`` without
its version, command and file list; the page's panel header); :meth:`Inspection.write` writes
the result folder all at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..defaults import STORED_MAX_SIDE
from ..images import load_image
from ..inspect import (
    Activations,
    FeatureMaps,
    KernelMatch,
    Prediction,
    TopImage,
    conv_layers,
    conv_weights,
    default_layer,
    feature_maps,
    model_outputs,
    nearest_kernels,
    outputs_dict,
    top_images,
    top_predictions,
)
from ..outputs import printable, save_figure, staged_dir, write_file, write_text
from ..plot import plot_image
from ..plot.models import (
    FilterScale,
    FilterView,
    parse_scale,
    parse_view,
    plot_feature_maps,
    plot_filters,
    plot_learned_vs_classical,
    plot_predictions,
    plot_top_images,
)
from ..version import __version__
from ..wording import percent

if TYPE_CHECKING:
    from ..models import OpenedModel
    from ..models.heads import ChosenOutput

MAPS_FILE = "feature-maps.npz"
"""The feature maps: float32 ``(C, H, W)`` per layer name (the npz contract)."""
INSPECT_FILE = "inspect.json"
LEARNED_FILE = "learned-vs-classical.png"
NEAREST_SHOWN = 8
"""Filters a surface lists beside their nearest built-in kernel, the closest first."""


@dataclass(frozen=True)
class KernelMatches:
    """The built-in kernel nearest to each learned filter ``(K, C, kh, kw)`` of conv ``layer``
    (``None`` where no built-in kernel fits the filter's size)."""

    layer: str
    weights: torch.Tensor
    matches: list[KernelMatch | None]

    @property
    def found(self) -> list[KernelMatch]:
        """The filters some built-in kernel fits, in filter order."""
        return [match for match in self.matches if match is not None]

    def best(self, count: int | None = None) -> list[KernelMatch]:
        """The ``count`` closest matches (all if ``None``), the highest ``|cosine|`` first."""
        ranked = sorted(self.found, key=lambda match: -match.similarity)
        return ranked if count is None else ranked[:count]

    @property
    def note(self) -> str | None:
        """Why nothing is matched (no built-in kernel fits the filters' size), or ``None``."""
        if self.found:
            return None
        height, width = self.weights.shape[2:]
        return f"no built-in kernel fits the {height}x{width} filters of {self.layer}"

    def to_dict(self) -> dict | None:
        """``{"layer", "matches": [{"filter", "kernel", "cosine"}]}`` (``kernel`` the signed
        name, ``cosine`` its similarity >= 0), or ``None`` when nothing matched."""
        if not self.found:
            return None
        return {"layer": self.layer, "matches": [
            {"filter": m.filter_index, "kernel": m.label, "cosine": m.similarity}
            for m in self.found]}


@dataclass(frozen=True)
class TopImages:
    """The data set images that most activate ``channel`` of ``layer``, best first, of the
    ``searched`` images looked at."""

    layer: str
    channel: int
    searched: int
    images: list[TopImage]

    @property
    def file_name(self) -> str:
        return f"top-images-{file_part(self.layer)}-ch{self.channel}.png"

    def to_dict(self) -> dict:
        return {"layer": self.layer, "channel": self.channel, "searched": self.searched,
                "images": [{"source": item.source, "score": item.score}
                           for item in self.images]}


@dataclass
class Inspection:
    """One image through one model: feature maps, predictions, filters and nearest kernels.

    ``source`` names the image (its path as given); ``model`` describes the model
    (``source``, ``kind``, ``in_channels``, ``input_size``, ``notes``); ``activations`` holds the
    input as the model saw it, the feature maps per layer and the model's output;
    ``predictions`` the top classes (``None`` when the output is not one row of class scores);
    ``filters`` the weights ``(K, C, kh, kw)`` of each conv layer among the inspected ones;
    ``nearest`` the built-in kernel nearest to each filter of one conv layer; ``top_images``
    the data set images that most drive one channel, when asked for; ``outputs`` which of the
    model's outputs holds the class scores (its ``note()`` is ``None`` for a model with one).
    """

    source: str
    model: dict[str, Any]
    activations: Activations
    predictions: list[Prediction] | None
    filters: dict[str, torch.Tensor] = field(default_factory=dict)
    nearest: KernelMatches | None = None
    top_images: TopImages | None = None
    outputs: ChosenOutput | None = None

    @property
    def layers(self) -> dict[str, FeatureMaps]:
        """The feature maps per layer name, in the order the layers ran."""
        return self.activations.layers

    @property
    def headline(self) -> str:
        """The top three predictions in one line (``""`` for a model that does not classify)."""
        if not self.predictions:
            return ""
        return "prediction: " + ", ".join(f"{p.label} {percent(p.probability, 0)}"
                                          for p in self.predictions[:3])

    def to_dict(self) -> dict:
        """Everything computed, JSON-ready: the model, the image, the input shape the model
        saw ``(C, H, W)``, the predictions, per layer its type, full and stored shapes and
        every channel's statistics (the most active first), the nearest kernels and the top
        images. The model's ``outputs`` say, of a model that returns several, which holds the
        class scores (``None`` for a model with one)."""
        return {
            "model": {**self.model, "outputs": outputs_dict(self.outputs)},
            "image": self.source,
            "model_input_shape": list(self.activations.prepared.batch.shape[1:]),
            "predictions": [asdict(p) for p in self.predictions or []],
            "layers": {name: {"type": maps.layer_type, "shape": list(maps.shape),
                              "stored_shape": list(maps.maps.shape),
                              "stored_factor": maps.factor,
                              "channels": maps.stats.to_dict(maps.top())}
                       for name, maps in self.layers.items()},
            "learned_vs_classical": None if self.nearest is None else self.nearest.to_dict(),
            "top_images": None if self.top_images is None else self.top_images.to_dict(),
        }

    def write(
        self,
        folder: Path,
        *,
        force: bool = False,
        command: str | None = None,
        top: int = 8,
        scale: FilterScale | str = FilterScale.SHARED,
        view: FilterView | str = FilterView.AUTO,
    ) -> list[Path]:
        """Write the result folder all at once (an error leaves nothing): ``input.png``,
        ``predictions.png`` (classifiers), ``maps-<layer>.png`` per layer (the ``top`` most
        active channels), :data:`MAPS_FILE`, ``filters-<layer>.png`` per conv layer (``scale``
        and ``view`` as :func:`~convlens.plot.models.plot_filters` takes them),
        ``learned-vs-classical.png``, ``top-images-<layer>-ch<N>.png`` and :data:`INSPECT_FILE`
        (:meth:`to_dict` with the version, ``command`` and the file list). Returns the paths
        written, in ``folder``."""
        scale, view = parse_scale(scale), parse_view(view)
        shown = self.activations.prepared.display
        name = printable(Path(self.source).name)
        with staged_dir(folder, force) as stage:
            written = [save_figure(plot_image(shown, "model input (what the model sees), values "
                                                     f"[{float(shown.min()):.3g}, "
                                                     f"{float(shown.max()):.3g}]"),
                                   stage / "input.png")]
            if self.predictions:
                written.append(save_figure(
                    plot_predictions(self.predictions,
                                     f"{name}: top {len(self.predictions)} predictions"),
                    stage / "predictions.png"))
            for layer, maps in self.layers.items():
                written.append(save_figure(plot_feature_maps(maps, top, self.headline),
                                           stage / f"maps-{file_part(layer)}.png"))
            arrays: dict[str, Any] = {layer: maps.maps.numpy().astype(np.float32, copy=False)
                      for layer, maps in self.layers.items()}
            written.append(write_file(stage / MAPS_FILE, lambda path: np.savez(path, **arrays)))
            for layer, weights in self.filters.items():
                written.append(save_figure(plot_filters(weights, layer, scale, view),
                                           stage / f"filters-{file_part(layer)}.png"))
            if self.nearest is not None and self.nearest.found:
                written.append(save_figure(
                    plot_learned_vs_classical(self.nearest.weights, self.nearest.matches,
                                              self.nearest.layer), stage / LEARNED_FILE))
            if self.top_images is not None:
                tops = self.top_images
                written.append(save_figure(
                    plot_top_images(tops.images, tops.layer, tops.channel, tops.searched),
                    stage / tops.file_name))
            summary = {"convlens_version": __version__, "command": command, **self.to_dict(),
                       "files": sorted([*(path.name for path in written), INSPECT_FILE])}
            written.append(write_text(stage / INSPECT_FILE, json.dumps(summary, indent=2) + "\n"))
        return [Path(folder) / path.name for path in written]

    def _repr_html_(self) -> str:
        from ..display import inspection_html

        return inspection_html(self)


def inspect_image(
    opened: OpenedModel,
    image: torch.Tensor | str | Path,
    layers: Sequence[str] = (),
    *,
    all_conv: bool = False,
    max_side: int | None = STORED_MAX_SIDE,
    top_k: int = 5,
    nearest: str | bool = True,
    data: Sequence[str | Path] = (),
    channel: int | None = None,
    images: int = 8,
    progress: Callable[[int], None] | None = None,
    source: str | None = None,
) -> Inspection:
    """Inspect ``image`` (a file, loaded as RGB, or a tensor ``(C, H, W)`` in [0, 1]).

    ``layers``: whose feature maps to keep (with ``all_conv`` every conv layer too; none: the
    first conv layer), area-averaged to ``max_side`` px (``None``: full size; statistics are
    always of the full maps). ``top_k`` predictions. ``nearest``: the conv layer whose filters
    are matched to the built-in kernels (``True``: the first conv layer; ``False``: none).
    ``data``: image files to search for the ``images`` that most activate ``channel`` (default:
    the most active channel for ``image``) of the first layer; ``progress(n)`` hears of each
    batch. ``source`` names a tensor ``image`` in the results.
    """
    if isinstance(image, torch.Tensor):
        picture, source = image, source or "image"
    else:
        picture, source = load_image(image, mode="rgb"), source or str(image)
    convs = conv_layers(opened)
    names = list(layers)
    if all_conv:
        names += [name for name in convs if name not in names]
    if not names:
        names = [default_layer(opened)]
    activations = feature_maps(opened, picture, names, max_side)
    outputs = model_outputs(activations.output, opened)
    predictions = top_predictions(activations.output, opened, top_k)
    filters = {name: conv_weights(opened, name)
               for name in dict.fromkeys(key.split("#", 1)[0] for key in activations.layers)
               if name in convs}
    matched = (convs[0] if convs else None) if nearest is True else nearest or None
    kernels = None
    if matched is not None:
        weights = filters[matched] if matched in filters else conv_weights(opened, matched)
        kernels = KernelMatches(matched, weights, nearest_kernels(weights))
    found = None
    if data:
        chosen = activations.layers[names[0]].top(1)[0] if channel is None else channel
        found = TopImages(names[0], chosen, len(data),
                          top_images(opened, names[0], chosen, data, images, progress=progress))
    return Inspection(source, model_summary(opened), activations, predictions, filters, kernels,
                      found, outputs)


def model_summary(opened: OpenedModel) -> dict[str, Any]:
    """The model as the results describe it: ``source``, ``kind``, ``in_channels``,
    ``input_size`` ``[H, W]`` (or ``None``) and ``notes``."""
    size = None if opened.input_size is None else list(opened.input_size)
    return {"source": opened.source, "kind": opened.kind.value,
            "in_channels": opened.in_channels, "input_size": size, "notes": list(opened.notes)}


def file_part(name: str) -> str:
    """A layer name as part of a file name: letters, digits, ``.``, ``_`` and ``-`` kept, the
    rest ``_``."""
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)


__all__ = [
    "INSPECT_FILE",
    "MAPS_FILE",
    "Inspection",
    "KernelMatches",
    "TopImages",
    "file_part",
    "inspect_image",
    "model_summary",
]
