"""Single-pass CPU path for conv -> activation -> pool, giving the numbers of the reference.

Every stage of the layer is memory-bound on a CPU: a 3x3 kernel does 9 multiply-adds per output
value, but the value still has to be written to memory, and twice more for the activated and
pooled copies. The fastest way to keep all three stages is one pass over the input that writes
each stage exactly once while the row it came from is still in cache. :func:`run_layer` does
that with a numba kernel run on blocks of output rows (and images of a batch) by several threads:

* the input is padded first with NumPy (every padding mode, the asymmetric 'same' padding, as
  :func:`~convlens.sizes.resolve_padding` says), so the kernel only ever does a *valid*
  cross-correlation;
* a block computes each conv row for every kernel into an accumulator (a tile of columns that
  stays in cache; up to nine kernel taps per vectorised sweep over it, two kernels sharing each
  load of the image), writes the conv and activated rows, and pools a pooled row as soon as
  the rows of its window are done, while they are still in cache;
* a pool window that reaches into the next block's rows (pool size larger than pool stride)
  recomputes those few rows into a scratch buffer instead of waiting for another thread;
* the kernel releases the GIL and plain Python threads run it, each taking the next chunk of
  blocks when free (no numba threading layer: its OpenMP one clashes with torch's, and a thread
  slowed by another program does not hold the rest up).

Nothing the size of a stage is allocated besides the three outputs themselves (no im2col), so an
8000x6000 photo with 16 kernels needs only its stages' memory. Outputs are allocated with NumPy,
which asks Linux for transparent huge pages: first-touching fresh memory in 4 KiB pages costs
more than the convolution itself on virtual machines.

:func:`run_layer` takes NumPy arrays (and returns arrays) or torch tensors (and returns tensors
sharing the same memory); this module imports neither torch nor numba itself.
The numba kernels live in :mod:`convlens.fused.compiled`, imported on the first
:func:`run_layer` call: importing this module, :func:`is_available` and :func:`supports` cost
no numba, so the dispatcher (:func:`convlens.layers.run_layer`) can ask them on every run and
load the kernel only when the work pays for it (:func:`is_loaded` says whether it has been).
The compiled kernel is cached on disk: only the very first call after installing pays numba's
compilation (5-10 s); later processes load it in about 0.3 s. Stores to memory are plain ones:
non-temporal stores were tried and only paid off on some workloads.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import numpy as np

from ..config import LEAKY_SLOPE, Activation, LayerConfig, PaddingMode, PoolType, StageOutputs
from ..errors import ConfigError
from ..limits import MAX_KERNEL_SIDE
from ..sizes import check_fits, resolve_padding
from ..stages import StageMaps

if TYPE_CHECKING:  # tensors are taken and given back, but torch is never imported here
    import torch

ACTIVATION_CODES = {
    # the numbers fused_tasks takes for each activation
    Activation.NONE: 0,
    Activation.RELU: 1,
    Activation.LEAKY_RELU: 2,
    Activation.TANH: 3,
    Activation.SIGMOID: 4,
    Activation.ABS: 5,
}

_TILE = 8192
"""Columns accumulated at a time (32 KiB of float32, in L1 or L2): a whole row of most images,
since each sweep over a tile has a fixed cost that shorter tiles pay more often."""

_CHUNKS_PER_THREAD = 8
"""Pieces of work per thread, taken in turn by whichever thread is free, so a thread slowed by
other processes on the machine does not hold the others up."""

_SMALL_WORK = 200_000
"""Below this many multiply-adds one thread does it all: handing work over costs more."""

_POOL_LOCK = threading.Lock()
_POOL: tuple[ThreadPoolExecutor, int, int] | None = None
"""The helper threads, their number, and the process they belong to (a forked child, such as a
data-loader worker, has none of its parent's threads and makes its own pool)."""

MAX_POOL_OVERLAP = 64
"""Pool size minus pool stride above which the rows recomputed at block edges stop paying."""


_NUMPY_PADDING: dict[PaddingMode, Literal["constant", "reflect", "edge", "wrap"]] = {
    PaddingMode.ZEROS: "constant",
    PaddingMode.REFLECT: "reflect",
    PaddingMode.REPLICATE: "edge",
    PaddingMode.CIRCULAR: "wrap",
}
"""The :func:`numpy.pad` mode of each padding mode (the same cells as ``F.pad``'s)."""

_COMPILED: ModuleType | None = None
""":mod:`convlens.fused.compiled` once :func:`run_layer` has imported it."""


def is_available() -> bool:
    """Whether the fused path can run here at all (numba is installed)."""
    return importlib.util.find_spec("numba") is not None


def is_loaded() -> bool:
    """Whether the kernel is compiled or loaded from the disk cache in this process already
    (after that, every run pays for the fused path, however small)."""
    return _COMPILED is not None and _COMPILED.is_compiled()


def _kernel():
    """:func:`convlens.fused.compiled.fused_tasks`, importing (and so loading) it first."""
    global _COMPILED
    if _COMPILED is None:
        from . import compiled

        _COMPILED = compiled
    return _COMPILED.fused_tasks


def supports(batch: Any, weights: Any, config: LayerConfig) -> bool:
    """Whether :func:`run_layer` handles this case (else the torch reference runs).

    The fused path takes a float32 ``(N, C, H, W)`` batch with matching float32 ``(K, C, kh,
    kw)`` weights, NumPy arrays or CPU tensors, up to :data:`~convlens.limits.MAX_KERNEL_SIDE`
    a side, and pools whose windows overlap by at most :data:`MAX_POOL_OVERLAP` rows.
    Gradients are not tracked.
    """
    if not plain_inputs(batch, weights):
        return False
    if max(weights.shape[2:]) > MAX_KERNEL_SIDE:
        return False
    overlap = 0 if config.pool is None else config.pool - (config.effective_pool_stride or 1)
    return overlap <= MAX_POOL_OVERLAP


def plain_inputs(batch: Any, weights: Any) -> bool:
    """Whether ``batch`` and ``weights`` are a float32 ``(N, C, H, W)`` batch and matching
    float32 ``(K, C, kh, kw)`` weights on the CPU, both NumPy arrays or both tensors that track
    no gradient, none of it empty: what the NumPy-memory backends take."""
    if isinstance(batch, np.ndarray) and isinstance(weights, np.ndarray):
        if batch.dtype != np.float32 or weights.dtype != np.float32:
            return False
    elif is_tensor(batch) and is_tensor(weights):
        if batch.device.type != "cpu" or weights.device.type != "cpu":
            return False
        if str(batch.dtype) != "torch.float32" or str(weights.dtype) != "torch.float32":
            return False
        if batch.requires_grad or weights.requires_grad:
            return False
    else:
        return False
    if batch.ndim != 4 or weights.ndim != 4 or batch.shape[1] != weights.shape[1]:
        return False
    return min(batch.shape) > 0 and min(weights.shape) > 0


def is_tensor(value: object) -> bool:
    """Whether ``value`` is a torch tensor (without importing torch: a tensor can only exist
    once torch is loaded)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def default_threads() -> int:
    """The threads a CPU backend uses by default: torch's setting where torch is loaded (so
    ``torch.set_num_threads`` is honoured), else the CPUs this process may run on."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return max(1, int(torch.get_num_threads()))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def as_arrays(batch: torch.Tensor, weights: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """A CPU batch and weights as the NumPy arrays sharing their memory."""
    return batch.detach().numpy(), weights.detach().contiguous().numpy()


def as_tensors(maps: StageMaps) -> StageOutputs:
    """Stages made of arrays as tensors sharing their memory; an array that is another stage
    (``activated`` is ``conv`` without an activation) stays the same tensor."""
    import torch

    made: dict[int, torch.Tensor] = {}
    for array in maps:
        if id(array) not in made:
            made[id(array)] = torch.from_numpy(array)
    return StageOutputs(*(made[id(array)] for array in maps))


@overload
def run_layer(batch: np.ndarray, weights: np.ndarray, config: LayerConfig,
              out: StageMaps | None = None, threads: int | None = None) -> StageMaps: ...


@overload
def run_layer(batch: torch.Tensor, weights: torch.Tensor, config: LayerConfig,
              out: StageOutputs | None = None, threads: int | None = None) -> StageOutputs: ...


def run_layer(batch, weights, config, out=None, threads=None):
    """Stages of ``batch`` ``(N, C, H, W)`` for ``weights`` ``(K, C, kh, kw)``, one pass.

    Returns ``(conv, activated, pooled)``, each ``(N, K, H', W')`` float32, equal to
    :class:`~convlens.reference.FixedConvLayer`'s up to float32 summation order: a
    :class:`~convlens.stages.StageMaps` of arrays for arrays, a
    :class:`~convlens.config.StageOutputs` of CPU tensors for tensors. As in the reference,
    ``activated`` is ``conv`` itself for the activation ``none`` and ``pooled`` is
    ``activated`` itself without pooling.

    ``out`` reuses the outputs of an earlier call of the same shapes (a loop over images or a
    benchmark): writing into memory already touched is about twice as fast as into fresh pages.
    ``threads`` defaults to :func:`default_threads`.
    """
    if not supports(batch, weights, config):
        raise ConfigError(
            "the fused path takes a float32 (N, C, H, W) CPU batch and matching (K, C, kh, kw) "
            f"weights up to {MAX_KERNEL_SIDE} a side; got {tuple(batch.shape)} {batch.dtype} and "
            f"{tuple(weights.shape)} {weights.dtype}"
        )
    if isinstance(batch, np.ndarray):
        return _run_arrays(batch, weights, config, out, threads)
    x, w = as_arrays(batch, weights)
    if out is None:
        return as_tensors(_run_arrays(x, w, config, None, threads))
    arrays = _checked_out(out)
    maps = _run_arrays(x, w, config, StageMaps(*arrays), threads)
    given = {id(array): tensor for array, tensor in zip(arrays, out)}
    return StageOutputs(*(given[id(array)] for array in maps))


def _checked_out(out: StageOutputs) -> list[np.ndarray]:
    """The arrays of ``out``'s tensors, once each is checked to be a contiguous float32 CPU
    tensor (errors name the tensor)."""
    arrays = []
    for name, tensor in zip(StageOutputs._fields, out):
        if (not is_tensor(tensor) or str(tensor.dtype) != "torch.float32"
                or tensor.device.type != "cpu" or not tensor.is_contiguous()):
            raise ConfigError(f"out.{name} must be a contiguous float32 CPU tensor; got "
                              f"{tuple(tensor.shape)} {tensor.dtype}")
        arrays.append(tensor.numpy())
    return arrays


def layer_shapes(x_shape: tuple[int, ...], w_shape: tuple[int, ...], config: LayerConfig
                 ) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """The conv (and activated) and pooled shapes ``(N, K, H', W')`` of a layer run."""
    n_images, _, height, width = x_shape
    n_kernels = w_shape[0]
    sizes = check_fits(config, height, width, (w_shape[2], w_shape[3]))
    conv_h, conv_w = sizes[0].outputs
    pooled_h, pooled_w = sizes[1].outputs if config.pool is not None else (conv_h, conv_w)
    return (n_images, n_kernels, conv_h, conv_w), (n_images, n_kernels, pooled_h, pooled_w)


def bias_values(config: LayerConfig, n_kernels: int) -> np.ndarray:
    """The bias per kernel as float32 ``(K,)`` (zeros without one); a wrong count is an
    error."""
    bias = np.zeros(n_kernels, np.float32)
    if config.bias is not None:
        if len(config.bias) != n_kernels:
            raise ConfigError(
                f"bias needs one value per kernel ({n_kernels}); got {len(config.bias)}"
            )
        bias[:] = config.bias
    return bias


def _run_arrays(batch: np.ndarray, weights: np.ndarray, config: LayerConfig,
                out: StageMaps | None, threads: int | None) -> StageMaps:
    n_images, _, height, width = batch.shape
    n_kernels, _, kh, kw = weights.shape
    conv_shape, pooled_shape = layer_shapes(batch.shape, weights.shape, config)
    pooling = config.pool is not None
    pool = config.pool or 1
    pool_stride = config.effective_pool_stride or 1
    pooled_h = pooled_shape[2]

    x = _padded(batch, resolve_padding(config, height, width, (kh, kw)), config.padding_mode)
    w = np.ascontiguousarray(weights)
    bias = bias_values(config, n_kernels)
    activate = config.activation is not Activation.NONE
    conv, activated, pooled = outputs(out, conv_shape, pooled_shape, activate, pooling)

    rows, cols, taps = _taps(w, x.shape[2], config.dilation)
    threads = max(1, threads or default_threads())
    if conv.size * taps.shape[1] < _SMALL_WORK:
        threads = 1
    blocks = _blocks_per_image(n_images, pooled_h, pool, pool_stride, threads)
    arguments = (
        x.reshape(n_images, -1, x.shape[3]), rows, cols, taps, bias, config.stride,
        ACTIVATION_CODES[config.activation], np.float32(LEAKY_SLOPE), pool, pool_stride,
        pooling, config.pool_type is PoolType.MAX, blocks, _TILE,
        conv, activated, pooled,
    )
    _run_tasks(arguments, n_images * blocks, threads)
    return StageMaps(conv, activated, pooled)


def _padded(x: np.ndarray, pads: tuple[int, int, int, int], mode: PaddingMode) -> np.ndarray:
    """``x`` ``(N, C, H, W)`` padded by ``(top, bottom, left, right)`` cells in ``mode``, as a
    contiguous array (``x`` itself, made contiguous, without padding)."""
    top, bottom, left, right = pads
    if not any(pads):
        return np.ascontiguousarray(x)
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), _NUMPY_PADDING[mode])


def _run_tasks(arguments: tuple, n_tasks: int, threads: int) -> None:
    """Run tasks ``0 .. n_tasks-1`` of :func:`convlens.fused.compiled.fused_tasks` on
    ``threads`` threads (:func:`run_on_threads`, in chunks; the kernel releases the GIL)."""
    fused_tasks = _kernel()
    if threads == 1 or n_tasks == 1:
        fused_tasks(*arguments, 0, n_tasks)
        return
    n_chunks = min(n_tasks, _CHUNKS_PER_THREAD * threads)
    bounds = [n_tasks * i // n_chunks for i in range(n_chunks + 1)]
    run_on_threads(range(n_chunks),
                   lambda chunk: fused_tasks(*arguments, bounds[chunk], bounds[chunk + 1]),
                   threads)


T = TypeVar("T")


def run_on_threads(tasks: Iterable[T], work: Callable[[T], object], threads: int) -> None:
    """Run ``work(task)`` for every task on ``threads`` threads, the caller's among them: each
    takes the next task when it is free, so a thread slowed by other programs holds no one up.
    Plain Python threads run in parallel here because the backends' work releases the GIL
    (numba's ``nogil`` kernel, NumPy's array operations)."""
    if threads == 1:
        for task in tasks:
            work(task)
        return
    pending = iter(tasks)
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                try:
                    task = next(pending)
                except StopIteration:
                    return
            work(task)

    pool = _thread_pool(threads - 1)
    helpers = [pool.submit(worker) for _ in range(threads - 1)]
    worker()
    for helper in helpers:
        helper.result()



def _thread_pool(size: int) -> ThreadPoolExecutor:
    """The process-wide pool of helper threads of both CPU backends, grown on demand (a forked
    child makes its own: it has none of its parent's threads)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL[1] < size or _POOL[2] != os.getpid():
            if _POOL is not None and _POOL[2] == os.getpid():
                _POOL[0].shutdown(wait=False)
            pool = ThreadPoolExecutor(size, thread_name_prefix="convlens-cpu")
            _POOL = pool, size, os.getpid()
        return _POOL[0]


def outputs(
    out: StageMaps | None,
    conv_shape: tuple[int, ...],
    pooled_shape: tuple[int, ...],
    activate: bool,
    pooling: bool,
) -> StageMaps:
    """The three output arrays: ``out``'s when given and fitting, else fresh ones.

    Without an activation the activated stage *is* the conv stage, and without pooling the
    pooled stage *is* the activated one, as in the reference layer.
    """
    if out is not None:
        conv, activated, pooled = out
        expected = (conv_shape, conv_shape, pooled_shape)
        for name, array, shape in zip(StageOutputs._fields, out, expected):
            if (tuple(array.shape) != shape or array.dtype != np.float32
                    or not array.flags.c_contiguous or not array.flags.writeable):
                raise ConfigError(
                    f"out.{name} must be a contiguous float32 CPU tensor of shape {shape}; got "
                    f"{tuple(array.shape)} {array.dtype}"
                )
        if (activate and np.may_share_memory(conv, activated)) or (
                pooling and (np.may_share_memory(pooled, conv)
                             or np.may_share_memory(pooled, activated))):
            raise ConfigError("out's conv, activated and pooled tensors must be separate")
    else:
        conv = np.empty(conv_shape, np.float32)
        activated = np.empty(conv_shape, np.float32) if activate else conv
        pooled = np.empty(pooled_shape, np.float32) if pooling else activated
    if not activate:
        activated = conv
    if not pooling:
        pooled = activated
    return StageMaps(conv, activated, pooled)


def _taps(weights: np.ndarray, padded_h: int, dilation: int):
    """The kernels' taps, flattened in ``(c, i, j)`` order: the row offset into the padded
    image seen as ``(C * Hp, Wp)`` rows and the column offset ``(C * kh * kw,)``, shared by all
    kernels, and each kernel's weights ``(K, C * kh * kw)``."""
    n_kernels, channels, kh, kw = weights.shape
    c, i, j = np.meshgrid(np.arange(channels), np.arange(kh), np.arange(kw), indexing="ij")
    rows = (c * padded_h + i * dilation).ravel().astype(np.int64)
    cols = (j * dilation).ravel().astype(np.int64)
    return rows, cols, np.ascontiguousarray(weights.reshape(n_kernels, -1), np.float32)


def _blocks_per_image(
    n_images: int, pooled_h: int, pool: int, pool_stride: int, threads: int
) -> int:
    """How many row blocks to cut each image into: enough blocks for every thread to stay busy,
    but blocks tall enough that the rows recomputed at their edges (overlapping pool windows)
    stay a small share of the work."""
    if threads == 1:
        return 1
    wanted = math.ceil(_CHUNKS_PER_THREAD * threads / n_images)
    overlap = max(pool - pool_stride, 0)
    min_rows = max(8, 4 * overlap)
    most = max(1, (pooled_h * pool_stride) // min_rows)
    return int(max(1, min(wanted, most, pooled_h)))


__all__ = ["ACTIVATION_CODES", "MAX_POOL_OVERLAP", "bias_values", "default_threads", "is_available",
           "is_loaded", "is_tensor", "layer_shapes", "outputs", "plain_inputs", "run_layer",
           "supports"]
