"""Feature maps of an image at named layers, with per-channel statistics; and the data set
images that most activate one channel.

Maps are moved to the CPU as each layer produces them and area-averaged to at most
:data:`STORED_MAX_SIDE` pixels unless full size is asked for, with the statistics computed at
full resolution, so memory stays bounded however many layers of however large an image are
hooked.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..defaults import STORED_MAX_SIDE
from ..errors import ConfigError, ImageError, ModelError
from ..images import downsample_for_display, load_image
from ..models import OpenedModel, PreparedInput, prepare_input
from ..models.opening import INPUT_SIZE
from .hooks import LayerCapture
from .names import check_layer_names, layer_types
from .running import run_model

THUMBNAIL_SIDE = 96
"""Longest side, in pixels, of the images and maps :func:`top_images` keeps."""


@dataclass
class ChannelStats:
    """Per-channel statistics of one layer's full-resolution output, each ``(C,)``."""

    mean: np.ndarray
    std: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray
    zero_fraction: np.ndarray

    @classmethod
    def of(cls, maps: torch.Tensor) -> ChannelStats:
        """Statistics of ``maps`` ``(C, H, W)``, computed where the maps are (CPU or GPU)."""
        flat = maps.flatten(1).to(torch.float32)
        return cls(*(t.cpu().numpy().astype(np.float64) for t in (
            flat.mean(1), flat.std(1, unbiased=False), flat.amin(1), flat.amax(1),
            (flat == 0).to(torch.float32).mean(1))))

    def order(self) -> np.ndarray:
        """Channel indices, the most active (highest mean) first; ties keep channel order."""
        return np.argsort(-self.mean, kind="stable")

    def to_dict(self, channels: Iterable[int]) -> list[dict]:
        return [{"channel": int(c), "mean": float(self.mean[c]), "std": float(self.std[c]),
                 "min": float(self.minimum[c]), "max": float(self.maximum[c]),
                 "zero_fraction": float(self.zero_fraction[c])} for c in channels]


@dataclass
class FeatureMaps:
    """One layer's output for one image.

    ``shape`` is the full ``(C, H, W)``; ``maps`` ``(C, h, w)`` float32 on the CPU is that
    output area-averaged by ``factor`` (1: full size). ``stats`` are of the full output.
    """

    name: str
    layer_type: str
    shape: tuple[int, int, int]
    maps: torch.Tensor
    factor: int
    stats: ChannelStats

    def top(self, count: int | None = None) -> list[int]:
        """The ``count`` most active channels (all if ``None``), most active first."""
        order = self.stats.order().tolist()
        return order if count is None else order[:count]

    @property
    def value_range(self) -> tuple[float, float]:
        return float(self.stats.minimum.min()), float(self.stats.maximum.max())


@dataclass
class Activations:
    """Feature maps of one image at several layers, and the model's output for it: what
    :func:`feature_maps` computes (the ``inspect`` command's whole result, with predictions,
    filters and files, is :class:`convlens.results.Inspection`)."""

    prepared: PreparedInput
    layers: dict[str, FeatureMaps]
    output: Any


def feature_maps(
    opened: OpenedModel,
    image: torch.Tensor,
    layers: Sequence[str],
    max_side: int | None = STORED_MAX_SIDE,
) -> Activations:
    """Run ``image`` ``(C, H, W)`` in [0, 1] through the model, keeping the output of each of
    ``layers`` as :class:`FeatureMaps` (area-averaged to ``max_side`` px; ``None``: full size).
    """
    names = check_layer_names(opened, layers)
    prepared = prepare_input(image, opened)
    types = layer_types(opened)
    kept: dict[str, FeatureMaps] = {}

    def sink(name: str, inputs, output) -> None:
        base = name.split("#", 1)[0]
        if not isinstance(output, torch.Tensor) or output.ndim != 4:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output)
            raise ModelError(f"layer {base!r} ({types.get(base, '?')}) gives {shape}, not feature "
                             "maps (N, C, H, W); pick a conv, activation or pool layer")
        kept[name] = _keep(name, types.get(base, "?"), output.detach()[0], max_side)

    with LayerCapture(opened, names, sink) as capture, torch.no_grad():
        output = run_model(opened, capture, prepared.batch)
    return Activations(prepared, kept, output)


def tensor_bytes(maps: Iterable[FeatureMaps]) -> int:
    """Bytes held by the stored maps (what :data:`STORED_MAX_SIDE` bounds)."""
    return sum(item.maps.numel() * item.maps.element_size() for item in maps)


def _keep(name: str, kind: str, maps: torch.Tensor, max_side: int | None) -> FeatureMaps:
    stats = ChannelStats.of(maps)
    # a copy, never a view: an in-place op after the layer (ReLU(inplace=True)) would change it
    data = maps.to("cpu", torch.float32, copy=True)
    factor = 1
    if max_side is not None:
        data, factor = _shrink(data, max_side)
    channels, height, width = maps.shape
    return FeatureMaps(name, kind, (channels, height, width), data.contiguous(), factor, stats)


def _shrink(data: torch.Tensor, max_side: int) -> tuple[torch.Tensor, int]:
    """``(C, H, W)`` float32 on the CPU, area-averaged by a whole factor so its longer side is
    at most ``max_side``; and the factor."""
    small, factor = downsample_for_display(data.numpy(), max_side)
    return torch.from_numpy(np.ascontiguousarray(small, dtype=np.float32)), factor


# --------------------------------------------------------------------------- data set images


@dataclass
class TopImage:
    """A data set image and how strongly it drives one channel.

    ``score`` is the channel's mean activation over the map; ``image`` ``(C, h, w)`` is what
    the model saw (small), ``activation`` ``(h', w')`` the channel's map (small), ``map_shape``
    the map's full ``(H, W)``.
    """

    source: str
    score: float
    image: torch.Tensor
    activation: torch.Tensor
    map_shape: tuple[int, int] = (0, 0)


def top_images(
    opened: OpenedModel,
    layer: str,
    channel: int,
    sources: Sequence[str | Path],
    count: int = 9,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> list[TopImage]:
    """The ``count`` images of ``sources`` whose mean activation of ``channel`` at ``layer`` is
    highest, best first. Each forward pass stops after ``layer``; only the current best are
    kept, so memory does not grow with the data set. ``progress(n)`` is told of each batch.
    """
    check_layer_names(opened, [layer])
    if count < 1 or batch_size < 1:
        raise ConfigError(f"count and batch size must be at least 1; got {count}, {batch_size}")
    if not sources:
        raise ImageError("no data set images given")
    if opened.fixed_input:
        batch_size = 1  # an exported program runs the batch size it was exported with
    best: list[tuple[float, int, TopImage]] = []
    state: dict[str, Any] = {}

    def sink(name: str, inputs, output) -> None:
        if name == layer:
            state["output"] = output.detach()

    with LayerCapture(opened, [layer], sink, stop_after=layer) as capture, torch.no_grad():
        for start in range(0, len(sources), batch_size):
            chunk = list(sources[start:start + batch_size])
            prepared = [prepare_input(load_image(path, mode="rgb"), opened) for path in chunk]
            shapes = {tuple(p.batch.shape) for p in prepared}
            if len(shapes) > 1 and opened.input_size is None:
                raise ModelError("the data set images differ in size and the model does not say "
                                 f"its input size; pass {INPUT_SIZE.python}",
                                 options=[INPUT_SIZE])
            state.clear()
            run_model(opened, capture, torch.cat([p.batch for p in prepared]))
            maps = state.get("output")
            if not isinstance(maps, torch.Tensor) or maps.ndim != 4:
                raise ModelError(f"layer {layer!r} gives no feature maps (N, C, H, W)")
            if not 0 <= channel < maps.shape[1]:
                raise ModelError(f"channel {channel} does not exist: layer {layer!r} has "
                                 f"{maps.shape[1]} channels (0-{maps.shape[1] - 1})")
            scores = maps[:, channel].flatten(1).to(torch.float32).mean(1).cpu()
            for offset, (path, item) in enumerate(zip(chunk, prepared)):
                score = float(scores[offset])
                order = start + offset
                if len(best) == count and score <= best[0][0]:
                    continue
                entry = TopImage(str(path), score, _thumbnail(item.display),
                                 _thumbnail(maps[offset, channel][None].cpu())[0],
                                 (maps.shape[-2], maps.shape[-1]))
                if len(best) < count:
                    heapq.heappush(best, (score, -order, entry))
                else:
                    heapq.heapreplace(best, (score, -order, entry))
            if progress is not None:
                progress(len(chunk))
    return [entry for _, _, entry in sorted(best, key=lambda item: (-item[0], -item[1]))]


def _thumbnail(data: torch.Tensor) -> torch.Tensor:
    return _shrink(data.to(torch.float32), THUMBNAIL_SIDE)[0]
