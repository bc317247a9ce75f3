"""The tutorial's conv -> activation -> pool layer, and the dispatcher between its backends.

The settings are a :class:`~convlens.config.LayerConfig`; the sizes they give are
:mod:`convlens.sizes`. :func:`run_layer` is the one dispatcher (:data:`BACKENDS`): the NumPy
backend (:mod:`convlens.fused.plain`) for small work, the fused numba CPU kernel
(:mod:`convlens.fused`) for large work, and the torch reference
(:class:`~convlens.reference.FixedConvLayer`) for GPUs and what the others do not take; each
imported only when it runs, so importing this module costs neither torch nor numba.
:func:`compute_stages` runs an image through it and returns :class:`~convlens.stages.Stages`,
the data every figure, file and explanation is made from.
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast, overload

import numpy as np

from .config import LayerConfig, StageOutputs
from .devices import device_for_work
from .errors import ConfigError
from .kernels import Kernel, kernel_array, unique_names
from .limits import MAX_KERNELS, check_at_most, check_budget
from .sizes import SizeStep, check_fits
from .stages import StageArrays, StageMaps, Stages, StageSummary

if TYPE_CHECKING:  # tensors are taken and given back; torch loads only to run the reference
    import torch


FLOAT_BYTES = 4
"""Bytes of one float32 value: every stage is float32."""

STAGE_COPIES = (5, 4)
"""How many times the outputs are held at the peak of one layer run, as a fraction: 5/4 where
PyTorch's result is kept as it is (gray images on the CPU; the fused kernel), 2 where a
channels-last result is copied to a contiguous one (colour images, GPUs). Measured peaks on the
CPU are 1.15-1.25x the outputs for gray images and 2.0-2.2x for RGB."""


@dataclass(frozen=True)
class LayerEstimate:
    """What one layer run costs, from shapes alone (nothing allocated). Bytes of float32.

    ``input_bytes`` is the batch, ``padded_bytes`` its padded copy (0 without padding),
    ``output_bytes`` the conv, activated and pooled stages once, ``memory`` the estimated peak
    (input, padded copy and the outputs :data:`STAGE_COPIES` times), ``work`` the multiply-adds
    ``N K C kh kw H' W'``, ``sizes`` the :func:`check_fits` steps.
    """

    input_bytes: int
    padded_bytes: int
    output_bytes: int
    memory: int
    work: int
    sizes: list[SizeStep]


def estimate_layer(
    input_shape: Sequence[int], kernel_shape: Sequence[int], config: LayerConfig,
    copied: bool | None = None,
) -> LayerEstimate:
    """The memory and work of running ``config`` with kernels ``kernel_shape`` ``(K, C, kh, kw)``
    over ``input_shape`` ``(C, H, W)`` or ``(N, C, H, W)``, from the size arithmetic of
    :func:`check_fits` (which also refuses a layer that does not fit). ``copied`` says the
    outputs are copied once more (channels-last on a GPU or for colour; default: C > 1).

    >>> e = estimate_layer((1, 100, 100), (2, 1, 3, 3), LayerConfig(pool=2))
    >>> e.sizes[0].outputs, e.output_bytes, e.work        # conv 98x98, pooled 49x49
    ((98, 98), 172872, 172872)
    """
    *batch, channels, height, width = (int(side) for side in input_shape)
    count = math.prod(batch)
    kernels, _, kh, kw = (int(side) for side in kernel_shape)
    sizes = check_fits(config, height, width, (kh, kw))
    top, bottom, left, right = sizes[0].padding
    conv_h, conv_w = sizes[0].outputs
    pooled_h, pooled_w = sizes[-1].outputs if config.pool is not None else (0, 0)
    input_bytes = FLOAT_BYTES * count * channels * height * width
    padded_bytes = 0 if not any(sizes[0].padding) else (
        FLOAT_BYTES * count * channels * (height + top + bottom) * (width + left + right))
    output_bytes = FLOAT_BYTES * count * kernels * (2 * conv_h * conv_w + pooled_h * pooled_w)
    copies, per = STAGE_COPIES if not (channels > 1 if copied is None else copied) else (2, 1)
    memory = input_bytes + padded_bytes + copies * output_bytes // per
    work = count * kernels * channels * kh * kw * conv_h * conv_w
    return LayerEstimate(input_bytes, padded_bytes, output_bytes, memory, work, sizes)


def check_layer_budget(
    input_shape: Sequence[int], kernel_shape: Sequence[int], config: LayerConfig,
    extra_bytes: int = 0, what: str = "", copied: bool | None = None,
) -> LayerEstimate:
    """Refuse, before anything is allocated, a layer run over the kernel-count limit or whose
    :func:`estimate_layer` memory (plus ``extra_bytes``, e.g. figures) or work is over the
    budget (:func:`convlens.limits.check_budget`); ``what`` names the job in the message."""
    kernels = int(kernel_shape[0])
    check_at_most(kernels, MAX_KERNELS, "the number of kernels",
                  "run them in groups of at most that many")
    estimate = estimate_layer(input_shape, kernel_shape, config, copied)
    if not what:
        shape = "x".join(str(int(side)) for side in input_shape)
        kh, kw = (int(side) for side in kernel_shape[2:])
        what = (f"a {shape} input with {kernels} {kh}x{kw} kernel{'s' * (kernels != 1)} "
                f"({'x'.join(map(str, estimate.sizes[0].outputs))} maps)")
    check_budget(estimate.memory + extra_bytes, what, work=estimate.work)
    return estimate


def compute_stages(
    image: np.ndarray | torch.Tensor,
    kernels: Sequence[Kernel],
    config: LayerConfig | None = None,
    device: str | torch.device = "auto",
    backend: str = "auto",
) -> Stages:
    """Run ``image`` ``(C, H, W)`` (a float32 NumPy array or a tensor) through conv ->
    activation -> pool with ``kernels``.

    ``backend`` is one of :data:`BACKENDS` (``auto`` picks, see :func:`run_layer`);
    ``device`` ``auto`` runs on the CPU unless the work pays for a GPU
    (:func:`convlens.devices.device_for_work`). On the CPU with a NumPy image no torch is
    imported. The stages come back as NumPy arrays on the CPU (their tensor views on demand).
    """
    if image.ndim != 3:
        raise ConfigError(f"expected an image (C, H, W); got shape {tuple(image.shape)}")
    config = config or LayerConfig()
    weights = kernel_array(kernels, int(image.shape[0]))
    sizes = check_fits(config, int(image.shape[1]), int(image.shape[2]),
                       (int(weights.shape[2]), int(weights.shape[3])))
    target = stage_device(device, image.shape, weights.shape, config, backend)
    array = _cpu_array(image)
    if target == "cpu" and backend != "torch":
        maps: StageMaps = run_layer(array[None], weights, config, "cpu", backend)
    else:
        import torch

        tensor = cast("torch.Tensor", image) if _is_tensor(image) else torch.from_numpy(array)
        batch = tensor[None]
        outputs = run_layer(batch, torch.from_numpy(weights), config, target, backend)
        maps = StageMaps(*_tensor_arrays(outputs))
    views: dict[int, np.ndarray] = {}
    conv, activated, pooled = (views.setdefault(id(m), m[0]) for m in maps)
    return Stages(StageArrays(array, weights, conv, activated, pooled), config,
                  unique_names(kernels), sizes)


def stage_device(device: Any, image_shape: Sequence[int], kernel_shape: Sequence[int],
                 config: LayerConfig, backend: str = "auto") -> str:
    """The device :func:`compute_stages` runs an image ``(C, H, W)`` through kernels
    ``(K, C, kh, kw)`` on, as text (``cpu``, ``cuda``, ``cuda:1``, ``mps``): ``auto`` takes a
    GPU only for work that pays for importing torch and starting it
    (:func:`convlens.devices.device_for_work`); the NumPy and fused backends always run on the
    CPU."""
    if backend in ("numpy", "fused") and str(device) == "auto":
        return "cpu"
    work = estimate_layer(image_shape, kernel_shape, config).work
    return device_for_work(device, work)


FUSED_MIN_MACS = 1_000_000_000
"""Multiply-adds (input pixels x kernel weights) from which ``auto`` runs the fused numba
kernel rather than the NumPy backend while numba is not loaded yet. Measured in fresh processes
by ``bench/bench_backend_threshold.py`` (its table is in its docstring): the NumPy backend, which
loads nothing, stays ahead of the fused kernel plus its load (about a second: importing numba
and loading the cached kernel) up to about 1.0 G; a 12 MP photo with the tutorial's three
kernels (0.29 G) took 1.1 s NumPy against 3.0 s fused and 7.2 s torch (importing torch
included), 48 MP (1.3 G) 3.3 s NumPy against 2.3 s fused."""

BACKENDS = ("auto", "torch", "fused", "numpy")
"""What :func:`run_layer` may be asked to use: ``torch`` is
:class:`~convlens.reference.FixedConvLayer`, the reference; ``fused`` the single-pass numba CPU
kernel of :mod:`convlens.fused`; ``numpy`` the NumPy backend of :mod:`convlens.fused.plain`;
``auto`` chooses (:func:`choose_backend`)."""


def fused_backend() -> ModuleType:
    """The fused CPU backend, :mod:`convlens.fused`, imported on first use.

    The dispatcher imports it by name, not at module level: the backends sit side by side
    below it and neither imports the other. Importing it costs no numba: its kernel loads on
    its first run (:func:`convlens.fused.is_loaded`)."""
    return importlib.import_module(".fused", __package__)


def numpy_backend() -> ModuleType:
    """The NumPy backend, :mod:`convlens.fused.plain`, imported on first use."""
    return importlib.import_module(".fused.plain", __package__)


def reference_backend() -> ModuleType:
    """The torch reference, :mod:`convlens.reference`, imported (and torch with it) on first
    use."""
    return importlib.import_module(".reference", __package__)


def fused_pays(batch: Any, weights: Any) -> bool:
    """Whether the fused CPU kernel is worth using for this batch ``(N, C, H, W)`` and weights
    ``(K, C, kh, kw)`` (arrays or tensors): always once it is loaded in this process, else from
    :data:`FUSED_MIN_MACS` multiply-adds (and only where numba is installed)."""
    fused = fused_backend()
    if not fused.is_available():
        return False
    if fused.is_loaded():
        return True
    pixels = int(batch.shape[0]) * int(batch.shape[2]) * int(batch.shape[3])
    return pixels * math.prod(int(side) for side in weights.shape) >= FUSED_MIN_MACS


def choose_backend(batch: Any, weights: Any, config: LayerConfig, device: str,
                   backend: str = "auto") -> str:
    """The backend :func:`run_layer` uses: ``backend`` itself unless it is ``auto``.

    ``auto`` takes the torch reference on a GPU and for what the CPU backends do not take
    (float64, tensors tracking gradients); else the fused kernel where it applies and pays
    (:func:`fused_pays`); else, for work of :data:`FUSED_MIN_MACS` or more where numba is
    missing, torch if it is imported already; else the NumPy backend, which loads nothing: on
    the 2-core machine it runs the bundled photo's layer in 20-50 ms, where importing torch
    alone takes 2 s and loading the numba kernel about 1 s.
    """
    if backend != "auto":
        return backend
    if device != "cpu":
        return "torch"
    if fused_pays(batch, weights) and fused_backend().supports(batch, weights, config):
        return "fused"
    if not numpy_backend().supports(batch, weights, config):
        return "torch"
    pixels = int(batch.shape[0]) * int(batch.shape[2]) * int(batch.shape[3])
    if "torch" in sys.modules and pixels * math.prod(weights.shape) >= FUSED_MIN_MACS:
        return "torch"  # large work without numba: torch's conv, already paid for, is faster
    return "numpy"


@overload
def run_layer(batch: np.ndarray, weights: np.ndarray, config: LayerConfig,
              device: Any = "cpu", backend: str = "auto") -> StageMaps: ...


@overload
def run_layer(batch: torch.Tensor, weights: torch.Tensor, config: LayerConfig,
              device: Any = "cpu", backend: str = "auto") -> StageOutputs: ...


def run_layer(batch, weights, config, device="cpu", backend="auto"):
    """Stages of a batch ``(N, C, H, W)`` for weights ``(K, C, kh, kw)``, each ``(N, K, H', W')``.

    The one dispatcher between the backends (:data:`BACKENDS`, :func:`choose_backend`). NumPy
    arrays in give :class:`~convlens.stages.StageMaps` of arrays on the CPU (torch is imported
    only if the torch backend runs); tensors in give :class:`~convlens.config.StageOutputs` of
    tensors on ``device``'s kind (CPU backends return CPU tensors sharing their arrays' memory).
    Every backend gives the numbers of :class:`~convlens.reference.FixedConvLayer`, the
    reference. A run over the kernel-count limit or the budget is refused first
    (:func:`check_layer_budget`).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be {', '.join(BACKENDS[:-1])} or {BACKENDS[-1]}; got "
                          f"{backend!r}")
    arrays = isinstance(batch, np.ndarray)
    if arrays:  # arrays stay off the GPU unless the work pays for starting it
        work = estimate_layer(tuple(batch.shape), tuple(weights.shape), config).work
        target = device_for_work(device, work)
    else:
        target = str(_torch_device(device))
    kind = target.split(":", 1)[0]
    check_layer_budget(tuple(batch.shape), tuple(weights.shape), config,
                       copied=kind != "cpu" or batch.shape[1] > 1)
    chosen = choose_backend(batch, weights, config, kind, backend)
    if chosen == "fused":
        return fused_backend().run_layer(batch, weights, config)
    if chosen == "numpy":
        plain = numpy_backend()
        if arrays:
            return plain.run_layer(batch, weights, config)
        fused = fused_backend()
        if not plain.supports(batch, weights, config):
            plain.run_layer(batch, weights, config)  # raises the NumPy backend's error
        return fused.as_tensors(plain.run_layer(*fused.as_arrays(batch, weights), config))
    import torch

    reference = reference_backend()
    if arrays:
        outputs = reference.run_reference(torch.from_numpy(np.asarray(batch)),
                                          torch.from_numpy(np.asarray(weights)), config,
                                          torch.device(target))
        return StageMaps(*_tensor_arrays(outputs))
    return reference.run_reference(batch, weights, config, torch.device(target))


def _torch_device(device: Any) -> torch.device:
    from .devices import resolve_device

    return resolve_device(device)


def _is_tensor(value: object) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _cpu_array(image: Any) -> np.ndarray:
    """An image array or tensor as a float32 NumPy array on the CPU (a CPU float32 tensor's
    own memory)."""
    if _is_tensor(image):
        image = image.detach().cpu().numpy()
    return np.asarray(image, dtype=np.float32)


def _tensor_arrays(outputs: StageOutputs) -> list[np.ndarray]:
    """The stages as float32 CPU arrays; a stage that is another one (``activated`` is
    ``conv``) stays the same array."""
    import torch

    made: dict[int, np.ndarray] = {}
    for tensor in outputs:
        if id(tensor) not in made:
            made[id(tensor)] = tensor.detach().to("cpu", torch.float32).numpy()
    return [made[id(tensor)] for tensor in outputs]


__all__ = [
    "BACKENDS",
    "FUSED_MIN_MACS",
    "LayerEstimate",
    "StageSummary",
    "Stages",
    "check_layer_budget",
    "choose_backend",
    "compute_stages",
    "estimate_layer",
    "fused_pays",
    "run_layer",
    "stage_device",
]
