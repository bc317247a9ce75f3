"""Every stage of one image through one layer, as NumPy arrays: :class:`Stages`.

Standard library and NumPy only: ``convlens run`` makes, draws, explains and writes its stages
without importing torch. The stages are held once, as float32 arrays (:class:`StageArrays`);
the tensor attributes (``stages.conv`` ...) torch callers use are views of the same memory,
made when first asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .config import LayerConfig
from .sizes import SizeStep

if TYPE_CHECKING:  # torch loads only where a tensor is asked for
    import torch


class StageArrays(NamedTuple):
    """The stages as float32 arrays: ``input`` ``(C, H, W)``, ``kernels`` ``(K, C, kh, kw)``,
    and ``conv``, ``activated``, ``pooled`` ``(K, H', W')`` (``activated`` may be ``conv``
    itself for the activation ``none``, and ``pooled`` ``activated`` itself without pooling)."""

    input: np.ndarray
    kernels: np.ndarray
    conv: np.ndarray
    activated: np.ndarray
    pooled: np.ndarray


class StageMaps(NamedTuple):
    """The three stages a NumPy backend returns for a batch, each float32 ``(N, K, H', W')``:
    :class:`~convlens.config.StageOutputs` made of arrays instead of tensors."""

    conv: np.ndarray
    activated: np.ndarray
    pooled: np.ndarray


@dataclass(eq=False)
class Stages:
    """Every stage of one image through one layer.

    ``arrays`` holds them as float32 NumPy arrays (:class:`StageArrays`). ``input``,
    ``kernels``, ``conv``, ``activated`` and ``pooled`` are the same stages as CPU float32
    torch tensors sharing that memory (torch is imported on the first such access).
    ``kernel_names`` label the K maps; ``sizes`` are the size steps that produced them.
    """

    arrays: StageArrays
    config: LayerConfig
    kernel_names: list[str]
    sizes: list[SizeStep] = field(default_factory=list)
    _tensors: dict[str, torch.Tensor] = field(default_factory=dict, init=False, repr=False)
    _ranges: dict[str, tuple[float, float]] = field(default_factory=dict, init=False,
                                                    repr=False)
    _zeroed: list[float] = field(default_factory=list, init=False, repr=False)

    STAGE_NAMES = StageArrays._fields

    def __post_init__(self) -> None:
        self.arrays = StageArrays(*(_float32(array) for array in self.arrays))

    def tensor(self, name: str) -> torch.Tensor:
        """Stage ``name`` as a CPU float32 tensor sharing the array's memory."""
        if name not in self._tensors:
            import torch

            self._tensors[name] = torch.from_numpy(getattr(self.arrays, name))
        return self._tensors[name]

    @property
    def input(self) -> torch.Tensor:
        """The input ``(C, H, W)`` as a tensor (shares ``arrays.input``)."""
        return self.tensor("input")

    @property
    def kernels(self) -> torch.Tensor:
        """The weights ``(K, C, kh, kw)`` as a tensor (shares ``arrays.kernels``)."""
        return self.tensor("kernels")

    @property
    def conv(self) -> torch.Tensor:
        """The conv maps ``(K, H', W')`` as a tensor (shares ``arrays.conv``)."""
        return self.tensor("conv")

    @property
    def activated(self) -> torch.Tensor:
        """The activated maps ``(K, H', W')`` as a tensor (shares ``arrays.activated``)."""
        return self.tensor("activated")

    @property
    def pooled(self) -> torch.Tensor:
        """The pooled maps ``(K, H', W')`` as a tensor (shares ``arrays.pooled``)."""
        return self.tensor("pooled")

    def to_numpy(self) -> dict[str, np.ndarray]:
        """The public npz contract: float32 arrays keyed ``input, kernels, conv, activated,
        pooled`` (the stages themselves, not copies)."""
        return dict(self.arrays._asdict())

    def __repr__(self) -> str:
        def shape(array: np.ndarray) -> str:
            return "x".join(map(str, array.shape))

        a = self.arrays
        return (f"Stages({', '.join(self.kernel_names)}: input {shape(a.input)}, kernels "
                f"{shape(a.kernels)}, conv/activated {shape(a.conv)}, pooled "
                f"{shape(a.pooled)})")

    def summary(self, separator: str = ";  ") -> list[StageSummary]:
        """Shape, range and share of zeros per stage, with the size formula that produced it."""
        a = self.arrays
        formulas = {step.stage: step.formula(separator) for step in self.sizes}
        rows = [StageSummary.of("input", a.input, "", self.value_range("input"))]
        rows.append(StageSummary.of("conv", a.conv, formulas.get("conv", ""),
                                    self.value_range("conv")))
        activated = StageSummary.of("activated", a.activated, "same size as conv",
                                    self.value_range("activated"))
        activated.zeroed = self.zeroed()
        rows.append(activated)
        pool_note = formulas.get("pooled", "no pooling: same as activated")
        rows.append(StageSummary.of("pooled", a.pooled, pool_note, self.value_range("pooled")))
        return rows

    def value_range(self, name: str) -> tuple[float, float]:
        """The smallest and largest value of stage ``name``, worked out once (the stages are a
        result: they are read, not changed, once made)."""
        if name not in self._ranges:
            self._ranges[name] = value_range(getattr(self.arrays, name))
        return self._ranges[name]

    def zeroed(self) -> float:
        """The share of conv values the activation set to zero (:func:`zeroed_share`), worked
        out once."""
        if not self._zeroed:
            self._zeroed.append(zeroed_share(self.arrays.conv, self.arrays.activated))
        return self._zeroed[0]


_BLOCK_VALUES = 1 << 16
"""Values read at a time when a whole stage is scanned (256 KiB: the second pass over a block
finds it in cache)."""


def value_range(array: np.ndarray) -> tuple[float, float]:
    """``(min, max)`` of ``array``, a block at a time so it is read from memory once."""
    flat = array.reshape(-1)
    if flat.size <= _BLOCK_VALUES:
        return float(flat.min()), float(flat.max())
    low, high = np.float32(np.inf), np.float32(-np.inf)
    for start in range(0, flat.size, _BLOCK_VALUES):
        block = flat[start:start + _BLOCK_VALUES]
        low = np.minimum(low, block.min())  # NaN propagates, as in array.min()
        high = np.maximum(high, block.max())
    return float(low), float(high)


def zeroed_share(conv: np.ndarray, activated: np.ndarray) -> float:
    """The share of values the activation set to zero (non-zero in ``conv``, zero after),
    counted one map at a time so no copy of a whole stage is made."""
    if activated is conv or not conv.size:
        return 0.0
    count = 0
    for conv_map, activated_map in zip(conv.reshape(-1, *conv.shape[-2:]),
                                       activated.reshape(-1, *activated.shape[-2:])):
        count += int(np.count_nonzero((activated_map == 0) & (conv_map != 0)))
    return count / conv.size


@dataclass
class StageSummary:
    """One row of the stage table."""

    stage: str
    shape: tuple[int, ...]
    minimum: float
    maximum: float
    size_formula: str
    zeroed: float | None = None

    @classmethod
    def of(cls, stage: str, array: np.ndarray, formula: str,
           limits: tuple[float, float] | None = None) -> StageSummary:
        """The row of ``array`` (its ``limits``, ``(min, max)``, when known already)."""
        values = np.asarray(array)
        low, high = limits if limits is not None else value_range(values)
        return cls(stage, tuple(values.shape), low, high, formula)


def _float32(array: object) -> np.ndarray:
    """``array`` as a float32 NumPy array (itself when it is one; a CPU tensor's memory)."""
    if isinstance(array, np.ndarray) and array.dtype == np.float32:
        return array
    detach = getattr(array, "detach", None)
    if detach is not None:  # a tensor
        array = detach().cpu().numpy()
    return np.asarray(array, dtype=np.float32)


__all__ = ["StageArrays", "StageMaps", "StageSummary", "Stages", "value_range", "zeroed_share"]
