"""Why did the model say "dog"? Saliency maps: which input pixels drove one class score.

* **Grad-CAM** (Selvaraju et al., 2017): a conv layer's maps weighted by the mean gradient of
  the class score over each map, summed over channels, ReLU'd and resized to the input. Coarse
  (the layer's resolution) but class-discriminative.
* **Integrated gradients** (Sundararajan et al., 2017), through Captum: the gradient averaged
  along the straight path from a black image to the input, times the difference. Pixel-sharp;
  the attributions sum to the score difference (the convergence delta says how closely).
* **Guided backprop** (Springenberg et al., 2015), through Captum: the input gradient with
  negative gradients stopped at every ``nn.ReLU`` module (so not for TorchScript, exported
  programs or functional ReLUs). Sharp edges, weakly class-specific.

Grad-CAM reads the layer through :class:`convlens.inspect.LayerCapture`, so it works on
TorchScript models too, where Captum's layer methods cannot hook; it gives Captum's
``LayerGradCam`` numbers (tested). The gradient methods run on any differentiable model.

Of a model that returns several outputs (MTCNN's ONet: box offsets, landmarks, face
probability), the class scores are the output ``opened.output`` names, else the one
:func:`convlens.models.heads.choose_output` picks; :attr:`ClassSaliency.outputs` says which.
"""

from __future__ import annotations

import difflib
import enum
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import ConfigError, ModelError, Option
from .inspect import (
    LAYER_LIST,
    LayerCapture,
    Prediction,
    check_layer_names,
    conv_layers,
    layer_types,
    run_model,
    top_predictions,
)
from .limits import MAX_IG_STEPS, check_at_most
from .models import OpenedModel, PreparedInput, eval_mode, prepare_input
from .models.heads import ChosenOutput, OutputChoice, choose_output

CAM_LAYER = Option("layer=NAME", "--layer NAME", "Grad-CAM's \"at layer\"")
"""How each surface names the layer Grad-CAM reads."""
CAM_LAYER_LIST = replace(LAYER_LIST, page="Grad-CAM's \"at layer\" menu")
"""Where each surface lists the layers Grad-CAM may read."""
IG_STEPS = 32
"""Integrated-gradients path steps; more steps, smaller convergence delta, more time."""
IG_BATCH = 8
"""Path points per forward/backward pass (bounds memory on large inputs)."""


class SaliencyMethod(str, enum.Enum):
    GRADCAM = "gradcam"
    INTEGRATED_GRADIENTS = "integrated-gradients"
    GUIDED_BACKPROP = "guided-backprop"

    @property
    def label(self) -> str:
        """The method's name in words (``Grad-CAM``), for tables and figure titles."""
        return {"gradcam": "Grad-CAM", "integrated-gradients": "integrated gradients",
                "guided-backprop": "guided backprop"}[self.value]

    @property
    def key(self) -> str:
        """Name used for npz keys and file names (``integrated_gradients``)."""
        return self.value.replace("-", "_")


def parse_methods(methods: Sequence[str | SaliencyMethod]) -> list[SaliencyMethod]:
    """Method names (``all`` for every one) -> :class:`SaliencyMethod` list, in order, unique."""
    chosen: list[SaliencyMethod] = []
    for method in methods:
        name = str(getattr(method, "value", method)).lower()
        if name == "all":
            items = list(SaliencyMethod)
        else:
            try:
                items = [SaliencyMethod(name)]
            except ValueError:
                names = ", ".join(m.value for m in SaliencyMethod)
                raise ConfigError(f"saliency method must be one of {names} or all; "
                                  f"got {method!r}") from None
        chosen += [item for item in items if item not in chosen]
    if not chosen:
        raise ConfigError("no saliency method given")
    return chosen


@dataclass
class SaliencyMap:
    """One method's answer for one class.

    ``heatmap`` ``(H, W)`` float32 on the CPU at the model's input size: Grad-CAM's map
    (>= 0), or for gradient methods the absolute attribution summed over channels. ``raw`` is
    Grad-CAM's map at the layer's resolution ``(h, w)`` or the signed attribution ``(C, H, W)``.
    """

    method: SaliencyMethod
    heatmap: torch.Tensor
    raw: torch.Tensor
    layer: str | None = None
    note: str = ""


@dataclass
class ClassSaliency:
    """Saliency of one image for one class, with the model's predictions: what
    :func:`explain_class` computes (the ``saliency`` command's whole result, with its files, is
    :class:`convlens.results.saliency.SaliencyResult`). ``outputs`` says which of the model's
    outputs holds the class scores (its tensor left out); its ``note()`` is ``None`` for a
    model with one output."""

    prepared: PreparedInput
    target: int
    label: str
    probability: float | None
    predictions: list[Prediction] | None
    maps: list[SaliencyMap] = field(default_factory=list)
    outputs: ChosenOutput | None = None


def resolve_target(opened: OpenedModel, spec: str | int | None, output: torch.Tensor) -> int:
    """The class index to explain: ``None`` -> the top prediction; an index; or a class name
    (case-insensitive)."""
    if not isinstance(output, torch.Tensor) or output.ndim != 2:
        raise ModelError("saliency needs a classifier: one row of class scores (1, K); this "
                         f"model gives {getattr(output, 'shape', type(output).__name__)}")
    count = int(output.shape[1])
    if spec is None:
        return int(output[0].argmax())
    text = str(spec).strip()
    names = opened.class_names or []
    lowered = [name.lower() for name in names]
    if text.lower() in lowered:
        index = lowered.index(text.lower())
    elif text.lstrip("-").isdigit():
        index = int(text)
    else:
        close = difflib.get_close_matches(text, names, n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        known = f"; the classes are {', '.join(names[:40])}" if names else (
            "; this model has no class names, give an index 0-" f"{count - 1}")
        raise ModelError(f"unknown class {text!r}{hint}{known}")
    if not 0 <= index < count:
        raise ModelError(f"class index {index} is out of range: the model has {count} classes "
                         f"(0-{count - 1})")
    return index


def default_gradcam_layer(opened: OpenedModel) -> str:
    """The last conv layer: the finest maps that already see whole objects."""
    convs = conv_layers(opened)
    if not convs:
        raise ModelError(f"Grad-CAM needs a conv layer and this model has none; name a layer "
                         f"with {CAM_LAYER.python}", options=[CAM_LAYER])
    return convs[-1]


def gradcam(opened: OpenedModel, batch: torch.Tensor, target: int, layer: str) -> SaliencyMap:
    """Grad-CAM of class ``target`` at ``layer`` for ``batch`` ``(1, C, H, W)``."""
    check_layer_names(opened, [layer])
    kept: dict[str, torch.Tensor] = {}

    def sink(name: str, inputs, output) -> torch.Tensor | None:
        if name != layer or not isinstance(output, torch.Tensor):
            return None
        kept["maps"] = output
        # the rest of the model gets a copy: an in-place op further on (ReLU(inplace=True))
        # must not overwrite the maps being explained
        return output.clone()

    x = batch.detach().clone().requires_grad_(True)
    with LayerCapture(opened, [layer], sink) as capture, torch.enable_grad():
        output = run_model(opened, capture, x)
        maps = kept.get("maps")
        if not isinstance(maps, torch.Tensor) or maps.ndim != 4:
            kind = layer_types(opened).get(layer, "?")
            raise ModelError(f"Grad-CAM needs feature maps (N, C, H, W) at layer {layer!r} "
                             f"({kind}); pick a conv layer (see {CAM_LAYER_LIST.python})",
                             options=[CAM_LAYER_LIST])
        score = _logits(output, opened.output)[0, target]
        (gradients,) = torch.autograd.grad(score, maps)
    weights = gradients.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * maps).sum(dim=1, keepdim=True)).detach()
    heat = F.interpolate(cam, size=tuple(batch.shape[-2:]), mode="bilinear", align_corners=False)
    note = "" if float(cam.max()) > 0 else "no positive evidence for this class at this layer"
    return SaliencyMap(SaliencyMethod.GRADCAM, heat[0, 0].cpu().float(), cam[0, 0].cpu().float(),
                       layer, note)


def integrated_gradients(
    opened: OpenedModel, prepared: PreparedInput, target: int, steps: int = IG_STEPS,
) -> SaliencyMap:
    """Integrated gradients (Captum) from a black image to the input, ``steps`` path points."""
    from captum.attr import IntegratedGradients

    check_steps(steps)
    baseline = prepare_input(torch.zeros_like(prepared.display), opened).batch
    with eval_mode(opened.module) as module:
        method = IntegratedGradients(lambda inputs: _logits(module(inputs), opened.output))
        attribution, delta = method.attribute(
            prepared.batch, baselines=baseline, target=target, n_steps=steps,
            internal_batch_size=1 if opened.fixed_input else IG_BATCH,
            return_convergence_delta=True)
    attribution = attribution.detach()[0].cpu().float()
    note = f"convergence delta {float(delta.abs().max()):.3g} ({steps} steps, black baseline)"
    return SaliencyMap(SaliencyMethod.INTEGRATED_GRADIENTS, attribution.abs().sum(0),
                       attribution, None, note)


def guided_backprop(opened: OpenedModel, batch: torch.Tensor, target: int) -> SaliencyMap:
    """Guided backprop (Captum): needs an ``nn.Module`` whose ReLUs are ``nn.ReLU`` modules."""
    from captum.attr import GuidedBackprop

    reason = guided_backprop_unavailable(opened)
    if reason:
        raise ModelError(f"{reason}; use gradcam or integrated-gradients")
    relus = [m for m in opened.module.modules() if isinstance(m, nn.ReLU)]
    inplace = [relu.inplace for relu in relus]
    with eval_mode(opened.module) as module:
        try:
            for relu in relus:
                relu.inplace = False  # backward hooks cannot wrap an in-place op
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                attribution = GuidedBackprop(_LogitsOnly(module, opened.output)).attribute(
                    batch.detach().clone(), target=target)
        finally:
            for relu, flag in zip(relus, inplace):
                relu.inplace = flag
    attribution = attribution.detach()[0].cpu().float()
    return SaliencyMap(SaliencyMethod.GUIDED_BACKPROP, attribution.abs().sum(0), attribution)


def guided_backprop_unavailable(opened: OpenedModel) -> str | None:
    """Why guided backprop cannot run on this model, or ``None`` if it can: it changes the
    gradient of each ``nn.ReLU`` module through hooks, so it needs such modules."""
    if opened.scripted:
        return ("guided backprop changes the gradient of each nn.ReLU through hooks, which "
                "TorchScript modules do not take")
    if not any(isinstance(m, nn.ReLU) for m in opened.module.modules()):
        return ("guided backprop changes the gradient of each nn.ReLU module, and this model "
                "has none (functional ReLUs, or an exported program)")
    return None


def check_steps(steps: int) -> None:
    """Refuse integrated-gradients ``steps`` below 2 or over
    :data:`~convlens.limits.MAX_IG_STEPS` (each step is a forward and backward pass)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ConfigError(f"integrated gradients needs a whole number of at least 2 steps; got "
                          f"{steps!r}")
    check_at_most(steps, MAX_IG_STEPS, "the number of integrated-gradients steps",
                  "a few hundred already converge")


def explain_class(
    opened: OpenedModel,
    image: torch.Tensor | PreparedInput,
    methods: Sequence[str | SaliencyMethod] = (SaliencyMethod.GRADCAM,),
    target: str | int | None = None,
    layer: str | None = None,
    steps: int = IG_STEPS,
    top_k: int = 5,
    *,
    output: Any = None,
) -> ClassSaliency:
    """Saliency of ``image`` ``(C, H, W)`` in [0, 1] for class ``target`` (default: the top
    prediction) by each of ``methods``; Grad-CAM at ``layer`` (default: the last conv layer).

    ``image`` may instead be an input the model has already run on, given with the model's
    ``output`` for it (as :func:`convlens.inspect.feature_maps` returns them), so the forward
    pass is not repeated.
    """
    chosen = parse_methods(methods)
    if SaliencyMethod.INTEGRATED_GRADIENTS in chosen:
        check_steps(steps)
    prepared = image if isinstance(image, PreparedInput) else prepare_input(image, opened)
    if output is None:
        with LayerCapture(opened, []) as capture, torch.no_grad():
            output = run_model(opened, capture, prepared.batch)
    scores = choose_output(output, opened.output)
    logits = _logits(output, opened.output)
    index = resolve_target(opened, target, logits)
    predictions = top_predictions(output, opened, top_k)
    already = scores.part is not None and scores.part.probabilities
    row = logits.detach().float()[0]
    probability = float((row if already else torch.softmax(row, 0))[index])
    result = ClassSaliency(prepared, index, opened.class_name(index), probability, predictions,
                           outputs=replace(scores, tensor=None))
    for method in chosen:
        if method is SaliencyMethod.GRADCAM:
            result.maps.append(gradcam(opened, prepared.batch, index,
                                       layer or default_gradcam_layer(opened)))
        elif method is SaliencyMethod.INTEGRATED_GRADIENTS:
            result.maps.append(integrated_gradients(opened, prepared, index, steps))
        else:
            result.maps.append(guided_backprop(opened, prepared.batch, index))
    return result


class _LogitsOnly(nn.Module):
    """Wraps a model so that Captum sees one tensor of class scores (output ``choice`` of a
    model that returns several)."""

    def __init__(self, model: nn.Module, choice: OutputChoice = None) -> None:
        super().__init__()
        self.model = model
        self.choice = choice

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _logits(self.model(x), self.choice)


def _logits(output: Any, choice: OutputChoice = None) -> torch.Tensor:
    """The class scores ``(N, K)`` in a model's ``output``: the output ``choice`` names, else
    the one :func:`~convlens.models.heads.choose_output` picks."""
    chosen = choose_output(output, choice)
    output = chosen.tensor if chosen.tensor is not None else output
    if not isinstance(output, torch.Tensor) or output.ndim != 2:
        shape = getattr(output, "shape", type(output).__name__)
        raise ModelError(f"saliency needs a classifier: one row of class scores (1, K) per "
                         f"image; this model gives {shape}")
    return output


__all__ = [
    "IG_STEPS",
    "ClassSaliency",
    "SaliencyMap",
    "SaliencyMethod",
    "default_gradcam_layer",
    "explain_class",
    "gradcam",
    "guided_backprop",
    "guided_backprop_unavailable",
    "integrated_gradients",
    "parse_methods",
    "resolve_target",
]
