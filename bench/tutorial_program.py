"""The tutorial's own program (../shared/seed), as a script with its defects fixed.

This is the baseline ``bench_run_vs_tutorial.py`` times ``convlens run`` against: load a photo,
make it gray, run it through ``nn.Conv2d`` with the tutorial's three 3x3 kernels, ReLU and a 2x2
max pool, and save three matplotlib figures (each stage's three maps: conv, activated, pooled),
as the tutorial's ``viz_layer`` draws them.

Fixed against the text: ``Net.__init__`` calls ``super().__init__()``; gray is computed from the
BGR array OpenCV loads (BT.601 luma 0.299 R + 0.587 G + 0.114 B), not from an RGB copy with the
BGR formula; the three filter banks are written out in full (horizontal Sobel, 4-neighbour
Laplacian, vertical Sobel); the notebook-only lines (``%matplotlib inline``, the Colab upload)
are gone and figures are saved instead of shown.

Usage: ``python bench/tutorial_program.py PHOTO OUT_DIR``
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FILTERS = np.array([
    [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],    # horizontal edges (Sobel)
    [[0, -1, 0], [-1, 4, -1], [0, -1, 0]],   # every edge (4-neighbour Laplacian)
    [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],    # vertical edges (Sobel)
], dtype=np.float32)


class Net(nn.Module):
    """One conv layer with fixed weights ``(3, 1, 3, 3)``, ReLU, then 2x2 max pooling."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, weight.shape[0], kernel_size=(3, 3), bias=False)
        self.conv.weight = nn.Parameter(weight)
        self.pool = nn.MaxPool2d(2, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        conv_x = self.conv(x)
        activated_x = F.relu(conv_x)
        return conv_x, activated_x, self.pool(activated_x)


def viz_layer(layer: torch.Tensor, n_filters: int = 3):
    """One panel per map of ``layer`` ``(1, K, H, W)``, in gray."""
    fig = plt.figure(figsize=(20, 20))
    for i in range(n_filters):
        axis = fig.add_subplot(1, n_filters, i + 1)
        axis.imshow(np.squeeze(layer[0, i].data.numpy()), cmap="gray")
        axis.set_title(f"Output Filtered Image {i + 1}")
    return fig


def main(photo: str, out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    image = cv2.imread(photo)  # BGR, uint8
    if image is None:
        raise SystemExit(f"cannot read {photo}")
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype("float32") / 255
    model = Net(torch.from_numpy(FILTERS).unsqueeze(1))
    with torch.no_grad():
        conv, activated, pooled = model(torch.from_numpy(gray)[None, None])
    for name, layer in (("conv", conv), ("activated", activated), ("pooled", pooled)):
        figure = viz_layer(layer)
        figure.savefig(out / f"{name}.png")
        plt.close(figure)


if __name__ == "__main__":
    main(*sys.argv[1:3])
