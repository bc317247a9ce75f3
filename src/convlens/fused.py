"""Single-pass CPU path for conv -> activation -> pool (filled in by the fast-path work)."""

from __future__ import annotations

import torch


def supports(batch: torch.Tensor, weights: torch.Tensor, config) -> bool:
    """Whether :func:`run_layer` handles this case; until then the torch reference runs."""
    return False


def run_layer(batch: torch.Tensor, weights: torch.Tensor, config):
    raise NotImplementedError
