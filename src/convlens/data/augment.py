"""Training augmentation on tensors: seeded random crops of the padded image and flips."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augment:
    """Training augmentation on tensors: random crop after ``crop_pad`` px of padding on each
    side (``pad_mode`` ``zeros`` or ``reflect``), and a random horizontal flip if ``flip``."""

    crop_pad: int = 0
    flip: bool = False
    pad_mode: str = "zeros"

    @property
    def active(self) -> bool:
        return self.crop_pad > 0 or self.flip

    def describe(self) -> str:
        parts = []
        if self.crop_pad:
            parts.append(f"random crop (pad {self.crop_pad}, {self.pad_mode})")
        if self.flip:
            parts.append("horizontal flip")
        return ", ".join(parts) or "none"


def augment_batch(images: torch.Tensor, augment: Augment,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply ``augment`` to a float batch ``(N, C, H, W)``: each image gets its own random
    shift (crop of the padded image) and flip. The random draws come from ``generator`` (a CPU
    generator), so a seeded run repeats exactly."""
    if not augment.active:
        return images
    count, channels, height, width = images.shape
    out = images
    if augment.crop_pad:
        pad = int(augment.crop_pad)
        mode = "reflect" if augment.pad_mode == "reflect" and pad < min(height, width) else (
            "constant")
        padded = F.pad(images, (pad, pad, pad, pad), mode=mode)
        shift_y = torch.randint(0, 2 * pad + 1, (count,), generator=generator)
        shift_x = torch.randint(0, 2 * pad + 1, (count,), generator=generator)
        rows = (torch.arange(height)[None] + shift_y[:, None]).to(images.device)
        cols = (torch.arange(width)[None] + shift_x[:, None]).to(images.device)
        sample = torch.arange(count, device=images.device)[:, None, None, None]
        channel = torch.arange(channels, device=images.device)[None, :, None, None]
        out = padded[sample, channel, rows[:, None, :, None], cols[:, None, None, :]]
    if augment.flip:
        flips = (torch.rand(count, generator=generator) < 0.5).to(images.device)
        out = torch.where(flips[:, None, None, None], out.flip(-1), out)
    return out
