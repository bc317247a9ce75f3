"""Small networks and oracles the tests share. This file imports only torch: the CLI tests
write its text as a user's module (``clinets.py``) and open ``clinets:build`` with
``--trust-code``."""

from __future__ import annotations

import torch
import torch.nn as nn


class ScriptedNet(nn.Module):
    """A small classifier for 32x32 RGB inputs: two conv-ReLU-pool blocks and a Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(8 * 8 * 8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.features(x)))


def build() -> ScriptedNet:
    """The factory a user's module offers."""
    return ScriptedNet()


def sides_that_run(model: nn.Module, sides) -> list[int]:
    """The oracle of input sizes: every square side (3 channels) the model runs at, found by
    running it."""
    fitting = []
    for side in sides:
        try:
            with torch.no_grad():
                model(torch.zeros(1, 3, side, side))
        except RuntimeError:
            continue
        fitting.append(side)
    return fitting
