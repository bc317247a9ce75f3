"""The model panel: one open model, its predictions, feature maps, learned filters, Grad-CAM.

The model is opened with :func:`convlens.models.open_model` and looked into with
:func:`convlens.results.inspection.inspect_image` and :func:`convlens.saliency.explain_class`
(Grad-CAM of the same forward pass); this module only picks what the page shows of those
results and packs it (:func:`render_run`, :func:`.wire.pack`). Checkpoints are opened from
the working folder (only those :meth:`ModelPanel.found` lists, never an arbitrary path) or from
an upload.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

from ..errors import ConvlensError, ModelError
from ..inspect import conv_layers, default_layer, layer_types
from ..models import INFO_FILE, WEIGHTS_FILE, OpenedModel, open_model
from ..models.info import FORMAT
from ..plot.models import FilterScale, rgb_tiles
from ..results.inspection import Inspection, inspect_image
from ..saliency import ClassSaliency, SaliencyMethod, explain_class
from .cache import LRU
from .limits import MAX_MODEL_BYTES, too_large
from .schemas import ModelRunIn
from .wire import pack, quantize_map, to_uint8

MAX_FOUND_MODELS = 40
"""Most checkpoints listed from the working folder."""
MAX_SEARCHED_FOLDERS = 3000
SKIPPED_FOLDERS = ("node_modules", "venv", "__pycache__", "site-packages")


class ModelPanel:
    """The model behind the page's model panel. Runs are serialized (hooks on one module are
    not re-entrant) and the last few are cached. ``trust_code``: whether files that run code
    when loaded (pickles, TorchScript, ``.pt2`` with pickled parts) may be opened."""

    def __init__(self, model: str | Path | OpenedModel | None, device: torch.device,
                 root: Path | None = None, trust_code: bool = False) -> None:
        self.device = device
        self.trust_code = trust_code
        self.root = (root or Path.cwd()).resolve()
        self.opened: OpenedModel | None = None
        self.source = ""
        self._lock = threading.Lock()
        self._runs = LRU(8)
        self._folder: tempfile.TemporaryDirectory | None = None
        self._generation = 0
        if isinstance(model, OpenedModel):
            self._adopt(model, model.source)
        elif model is not None:
            self._open(Path(model), str(model))

    def info(self) -> dict | None:
        """The open model for the page (source, classes, layers), or None."""
        return None if self.opened is None else self._describe(self.opened)

    def _describe(self, opened: OpenedModel) -> dict:
        convs = conv_layers(opened)
        return {
            "source": self.source, "describe": opened.describe(), "kind": opened.kind.value,
            "classes": list(opened.class_names or []), "input_size": opened.input_size,
            "in_channels": opened.in_channels, "notes": list(opened.notes),
            "layers": [{"name": name, "type": kind, "conv": name in convs}
                       for name, kind in layer_types(opened).items()],
            "default_layer": default_layer(opened) if convs else None,
        }

    def found(self) -> list[str]:
        """Convlens checkpoints under the working folder, three levels deep at most, as paths
        relative to it: model weights with ``model.json`` beside (:func:`is_model_weights`; not
        the training state a run keeps for resuming, which holds the optimizer's tensors too).
        Hidden folders and virtual environments are skipped, and the search stops after a few
        thousand folders so a page load never waits on a huge tree."""
        hits: list[str] = []
        for visited, (folder, subfolders, files) in enumerate(os.walk(self.root), start=1):
            here = Path(folder)
            depth = len(here.relative_to(self.root).parts)
            subfolders[:] = [] if depth >= 3 or visited > MAX_SEARCHED_FOLDERS else sorted(
                name for name in subfolders
                if not name.startswith(".") and name not in SKIPPED_FOLDERS)
            if INFO_FILE in files:
                hits += sorted((here / name).relative_to(self.root).as_posix()
                               for name in files if is_model_weights(here / name))
            if len(hits) >= MAX_FOUND_MODELS:
                break
        return sorted(hits[:MAX_FOUND_MODELS])

    def open_found(self, relative: str) -> dict:
        """Open one of the checkpoints :meth:`found` lists."""
        if relative not in self.found():
            raise ModelError(f"{relative!r} is not one of the checkpoints found under "
                             f"{self.root}; upload it instead")
        return self._open(self.root / relative, relative)

    def open_upload(self, files: dict[str, bytes], label: str) -> dict:
        """Open an uploaded model: ``files`` maps file names to their bytes, either a convlens
        checkpoint (``model.safetensors`` and ``model.json``) or one TorchScript (``.pt``) or
        torch.export (``.pt2``) file. Files that run code on load are refused unless the server
        trusts code, as ``--model`` refuses them without the opt-in."""
        size = sum(len(data) for data in files.values())
        if size > MAX_MODEL_BYTES:
            raise ModelError(too_large(size, MAX_MODEL_BYTES, "model"))
        folder = tempfile.TemporaryDirectory(prefix="convlens-model-")
        for name, data in files.items():
            (Path(folder.name) / name).write_bytes(data)
        main = WEIGHTS_FILE if WEIGHTS_FILE in files else next(iter(files))
        try:
            result = self._open(Path(folder.name) / main, Path(label).name)
        except ConvlensError as exc:
            folder.cleanup()  # the error names the file the user sent, not where it was put
            exc.args = (str(exc).replace(folder.name + os.sep, ""),)
            raise
        if self._folder is not None:
            self._folder.cleanup()
        self._folder = folder
        return result

    def close(self) -> None:
        if self._folder is not None:
            self._folder.cleanup()

    def _open(self, path: Path, label: str) -> dict:
        opened = open_model(path, device=self.device, trust_code=self.trust_code)
        opened.source = label  # what the user picked or sent, not where it was written
        return self._adopt(opened, label)

    def _adopt(self, opened: OpenedModel, label: str) -> dict:
        with self._lock:
            self.opened, self.source = opened, label
            self._generation += 1
        return self._describe(opened)

    def run(self, image: torch.Tensor, body: ModelRunIn) -> bytes:
        """The packed panel for ``image`` ``(3, H, W)``: predictions, the ``body.top`` most
        active feature maps of ``body.layer`` as uint8, its filters (conv layers), and Grad-CAM
        (classifiers) as a uint8 heat map over the image the model saw."""
        if self.opened is None:
            raise ModelError("no model is open: start with --model CKPT, or open one in the "
                             "model panel")
        key = (self._generation, body.image, body.max_side, body.layer, body.cam_layer,
               body.target, body.top, body.display)
        cached = self._runs.get(key)
        if cached is not None:
            return cached
        with self._lock:
            opened = self.opened
            layer = body.layer or default_layer(opened)
            convs = conv_layers(opened)
            seen = inspect_image(opened, image, [layer], max_side=body.display,
                                 nearest=layer if layer in convs else False)
            saliency = None
            if seen.predictions is not None:  # a classifier: Grad-CAM of the chosen class
                saliency = explain_class(opened, seen.activations.prepared,
                                         [SaliencyMethod.GRADCAM], body.target,
                                         body.cam_layer or None,
                                         output=seen.activations.output)
        header, arrays = render_run(seen, layer, body.top, body.display, saliency, self.source)
        message = pack(header, arrays)
        self._runs.put(key, message)
        return message


def is_model_weights(path: Path) -> bool:
    """Whether ``path`` holds a convlens model's weights: ``model.safetensors``, or another
    ``.safetensors`` file :func:`~convlens.models.save_checkpoint` wrote (its header says
    ``format: convlens-model``). A run's ``train-state.safetensors`` (weights, optimizer state
    and filter snapshots, for resuming) and other tensor files are not models."""
    if path.name == WEIGHTS_FILE:
        return True
    if path.suffix != ".safetensors":
        return False
    try:
        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata() or {}
    except Exception:  # not a readable safetensors file: not offered
        return False
    return metadata.get("format") == FORMAT


def render_run(inspection: Inspection, layer: str, top: int, display: int,
               saliency: ClassSaliency | None, source: str) -> tuple[dict, dict[str, np.ndarray]]:
    """The panel's message for one run, from :meth:`Inspection.to_dict` and the arrays the JSON
    cannot hold: the ``top`` most active maps of ``layer`` as uint8 (``display`` px a side at
    most), its first ``top`` filters as tiles with their nearest built-in kernels, and Grad-CAM
    (``saliency``) as a uint8 heat map over the image the model saw."""
    summary = inspection.to_dict()
    maps = inspection.layers[layer]
    described = summary["layers"][layer]
    header: dict = {
        "model": source,
        "predictions": summary["predictions"],
        "layer": {"name": layer, "type": described["type"], "shape": described["shape"],
                  "factor": described["stored_factor"]},
        "outputs": summary["model"]["outputs"],
    }
    arrays: dict[str, np.ndarray] = {}
    channels = maps.top(top)
    quantized = [quantize_map(maps.maps[c], display) for c in channels]
    if quantized:
        arrays["maps"] = np.stack([q for q, _ in quantized])
    header["channels"] = [{**stats, **entry}
                          for (_, stats), entry in zip(quantized, described["channels"])]
    header["filters"] = None
    weights = inspection.filters.get(layer)
    if weights is not None:
        header["filters"], arrays["filters"] = filter_tiles(weights, top)
        matched = summary["learned_vs_classical"] or {"matches": []}
        nearest = {m["filter"]: {"name": m["kernel"], "cosine": m["cosine"]}
                   for m in matched["matches"]}
        header["filters"]["matches"] = [nearest.get(index)
                                        for index in range(min(top, len(weights)))]
    header["gradcam"] = None
    if saliency is not None:
        cam = saliency.maps[0]
        heat = cam.heatmap.numpy()
        peak = float(heat.max())
        arrays["cam"] = to_uint8(heat / (peak or 1.0) * 255)
        arrays["seen"] = to_uint8(saliency.prepared.display.numpy() * 255)
        header["gradcam"] = {"layer": cam.layer, "target": saliency.target,
                             "label": saliency.label, "probability": saliency.probability,
                             "max": peak, "note": cam.note}
    return header, arrays


def filter_tiles(weights: torch.Tensor, count: int) -> tuple[dict, np.ndarray]:
    """The first ``count`` learned filters ``(K, C, kh, kw)`` as uint8 tiles, drawn as
    :func:`convlens.plot.models.plot_filters` draws them (:func:`~convlens.plot.models.rgb_tiles`,
    0 at mid-gray): RGB ``(K, 3, kh, kw)`` when the layer reads 3 channels, each filter on its
    own scale; else the mean over input channels ``(K, 1, kh, kw)`` on one signed scale."""
    data = weights[:count].numpy().astype(np.float64)
    if data.shape[1] == 3:
        tiles = rgb_tiles(data, FilterScale.PER_FILTER)
        info: dict = {"rgb": True, "scale": "each filter on its own scale, mid-gray = 0"}
    else:
        mean = data.mean(axis=1, keepdims=True)
        tiles = rgb_tiles(mean, FilterScale.SHARED)
        info = {"rgb": False, "limit": float(np.abs(mean).max()) or 1.0,
                "scale": "mean over input channels, shared signed scale"}
    info["shape"] = list(weights.shape)
    return info, to_uint8(tiles.transpose(0, 3, 1, 2) * 255)
