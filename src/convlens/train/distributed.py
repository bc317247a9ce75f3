"""The distributed set-up: under ``torchrun`` each process joins the process group (NCCL on
CUDA GPUs, Gloo on CPUs), trains on its share of every batch through DistributedDataParallel,
and only rank 0 writes files and speaks. ``torchrun --nproc-per-node 1`` joins a group of one,
so DDP and NCCL run as they would on more GPUs. Outside torchrun every call here is a no-op, so
the loop reads the same either way."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import cast

import torch
import torch.distributed as dist
import torch.nn as nn

from ..devices import resolve_device
from ..errors import ConfigError, ConvlensError, Option
from .runner import sum_dtype


@dataclass
class Dist:
    """Where this process stands in a (possibly one-process) run."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    joined: bool = False

    @property
    def active(self) -> bool:
        """Whether this process is in a process group (started by torchrun, maybe alone)."""
        return self.joined

    @property
    def main(self) -> bool:
        """Whether this process writes the files and speaks (rank 0)."""
        return self.rank == 0

    def all_sum(self, values: torch.Tensor) -> torch.Tensor:
        """Sum ``values`` over all processes (a no-op alone)."""
        if not self.active:
            return values
        reduced = values.to(self.device, sum_dtype(self.device))
        dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
        return reduced.to(values.device, values.dtype)

    def agree(self, make: Callable[[], object]) -> object:
        """Rank 0 computes ``make()`` and every rank gets its value, or its error."""
        if not self.active:
            return make()
        box: list[object] = [None, None]
        if self.main:
            try:
                box[0] = make()
            except ConvlensError as exc:
                box[1] = (str(exc), exc.options)  # the options word it for the CLI
        dist.broadcast_object_list(box, src=0,
                                   device=self.device if self.device.type == "cuda" else None)
        if isinstance(box[1], tuple):
            message, options = box[1]
            raise ConfigError(message, options=options)
        return box[0]

    def barrier(self) -> None:
        """Wait for every process (a no-op alone)."""
        if self.active:
            if self.device.type == "cuda":
                dist.barrier(device_ids=[self.device.index or 0])
            else:
                dist.barrier()

    def shard(self, count: int, epoch: int, seed: int, generator: torch.Generator
              ) -> torch.Tensor:
        """This process's sample order over ``count`` training images for ``epoch``: a
        shuffle from ``generator`` alone, or its DistributedSampler share."""
        if not self.active:
            return torch.randperm(count, generator=generator)
        from torch.utils.data import Dataset, DistributedSampler

        indices = cast("Dataset[int]", range(count))  # a sampler only needs its length
        sampler: DistributedSampler[int] = DistributedSampler(
            indices, num_replicas=self.world, rank=self.rank, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
        return torch.tensor(list(iter(sampler)), dtype=torch.long)

    def wrap(self, model: nn.Module, compile_model: bool = False) -> nn.Module:
        """DDP around ``model`` when there are other processes, then ``torch.compile`` when
        asked (PyTorch's order). The wrapped module shares ``model``'s parameters."""
        net = model
        if self.active:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            net = DistributedDataParallel(net, device_ids=ids)
        if compile_model:
            try:
                net = torch.compile(net)  # type: ignore[assignment]
            except Exception as exc:  # torch.compile raises many types
                raise ConfigError(f"torch.compile failed ({exc}); run without compile=True",
                                  options=[Option("compile=True", "--compile")]) from None
        return net


@contextlib.contextmanager
def distributed(device_name: str) -> Iterator[Dist]:
    """Join the ``torchrun`` process group if there is one (NCCL on CUDA, else Gloo); leave
    it on the way out (if this call joined it)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    launched = world > 1 or ("TORCHELASTIC_RUN_ID" in os.environ
                             and "MASTER_ADDR" in os.environ)  # torchrun, even with one process
    if not launched:
        yield Dist(device=resolve_device(device_name))
        return
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
        torch.cuda.set_device(device)
    elif device.type == "mps":
        raise ConfigError("multi-process training on MPS is not supported; use device='cpu'",
                          options=[Option("device='cpu'", "--device cpu")])
    backend = "nccl" if device.type == "cuda" else "gloo"
    started = not dist.is_initialized()
    if started:
        dist.init_process_group(backend=backend, device_id=device if backend == "nccl" else None)
    try:
        yield Dist(dist.get_rank(), dist.get_world_size(), local_rank, device, joined=True)
    finally:
        if started and dist.is_initialized():
            dist.destroy_process_group()


__all__ = ["Dist", "distributed"]
