"""A model that returns several outputs, built for the tests: shaped as MTCNN's ONet."""

from __future__ import annotations

import torch
import torch.nn as nn


class ONetLike(nn.Module):
    """MTCNN's ONet (facenet-pytorch): made for 48x48 faces; returns box offsets (N, 4),
    landmarks (N, 10) and the face probability (N, 2), softmaxed inside."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3), nn.PReLU(8), nn.MaxPool2d(3, 2, ceil_mode=True),
            nn.Conv2d(8, 8, 3), nn.PReLU(8), nn.MaxPool2d(3, 2, ceil_mode=True),
            nn.Conv2d(8, 8, 3), nn.PReLU(8), nn.MaxPool2d(2, 2, ceil_mode=True),
            nn.Conv2d(8, 16, 2), nn.PReLU(16), nn.Flatten(), nn.Linear(16 * 3 * 3, 32))
        self.box, self.landmarks, self.face = nn.Linear(32, 4), nn.Linear(32, 10), nn.Linear(32, 2)

    def forward(self, x):
        h = self.body(x)
        return self.box(h), self.landmarks(h), torch.softmax(self.face(h), dim=1)


ONET_LAYERS = "conv3, pool3 s2 ceil, conv3, pool3 s2 ceil, conv3, pool2 s2 ceil, conv2"
"""ONetLike's conv and pool layers, as :func:`convlens.sizes.size_chain` reads them."""



def build() -> ONetLike:
    """A seeded ONetLike, as a user's factory (``several_outputs:build`` on the command line)."""
    torch.manual_seed(0)
    return ONetLike()
