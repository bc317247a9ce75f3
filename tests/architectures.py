"""Real architectures written out for the tests (no pretrained weights can be downloaded
here, and torchvision does not load with this CPU torch): resnet18 in torchvision's layout
and an EfficientNet-B0-like net (MBConv blocks: expand, depthwise, squeeze-and-excitation
gate, project, residual add; SiLU, Hardswish, dropout), with weights of our own making
(:func:`own_weights`: random convs and batch-norm statistics, saved and loaded back)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn


class BasicBlock(nn.Module):
    """torchvision's resnet BasicBlock: two 3x3 convs, a 1x1 downsample where the shape
    changes, the residual add, ReLU (one module called twice)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """torchvision's resnet18 (names, shapes and forward), ``width`` channels in the first
    stage (64 in torchvision)."""

    def __init__(self, width: int = 64, classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = [(width, width, 1), (width, 2 * width, 2), (2 * width, 4 * width, 2),
                  (4 * width, 8 * width, 2)]
        for index, (cin, cout, stride) in enumerate(widths, start=1):
            setattr(self, f"layer{index}", nn.Sequential(BasicBlock(cin, cout, stride),
                                                          BasicBlock(cout, cout, 1)))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.act = nn.SiLU()
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.act(self.fc1(self.avgpool(x)))))


class MBConv(nn.Module):
    """EfficientNet's inverted residual: 1x1 expand, depthwise kxk, squeeze-and-excitation,
    1x1 project, the residual add where the shape stays."""

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int,
                 act: type[nn.Module] = nn.SiLU) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = nn.Sequential(nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid),
                                    act()) if expand > 1 else nn.Identity()
        self.depthwise = nn.Sequential(
            nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False),
            nn.BatchNorm2d(mid), act())
        self.se = SqueezeExcite(mid, max(1, cin // 4))
        self.project = nn.Sequential(nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.se(self.depthwise(self.expand(x))))
        return out + x if self.residual else out


class EfficientNetLike(nn.Module):
    """A small EfficientNet-B0-like net: stem, seven MBConv stages (SiLU; Hardswish in the
    last, as MobileNetV3), head conv, global pool, dropout, classifier."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8),
                                  nn.SiLU())
        stages = [(8, 8, 1, 3, 1), (8, 12, 6, 3, 2), (12, 12, 6, 3, 1), (12, 16, 6, 5, 2),
                  (16, 16, 6, 5, 1), (16, 24, 6, 3, 2), (24, 24, 6, 3, 1)]
        self.blocks = nn.Sequential(*[
            MBConv(cin, cout, expand, kernel, stride,
                   nn.Hardswish if index == len(stages) - 1 else nn.SiLU)
            for index, (cin, cout, expand, kernel, stride) in enumerate(stages)])
        self.head = nn.Sequential(nn.Conv2d(24, 64, 1, bias=False), nn.BatchNorm2d(64),
                                  nn.SiLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.2)
        self.classifier = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.head(self.blocks(self.stem(x))))
        return self.classifier(self.dropout(torch.flatten(x, 1)))


def own_weights(build: Callable[[], nn.Module], folder: Path, seed: int = 0) -> nn.Module:
    """A model from ``build()`` with weights of our own making, as a pretrained file gives
    them: conv and dense weights random with their fan-in's scale (the activations stay in
    range), batch norms with running statistics far from 0 and 1; written to
    ``folder/weights.pt`` and loaded (``load_state_dict``) into a second ``build()``, in eval
    mode."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, tensor in build().state_dict().items():
        if name.endswith(("running_mean", ".bias")):
            value = (torch.rand(tensor.shape, generator=generator) - 0.5) * 0.4
        elif name.endswith("running_var") or tensor.ndim == 1:   # and batch norm weights
            value = 0.5 + torch.rand(tensor.shape, generator=generator)
        elif name.endswith("num_batches_tracked"):
            value = torch.tensor(1000)
        else:
            fan_in = tensor[0].numel()
            value = torch.randn(tensor.shape, generator=generator) * (2.0 / fan_in) ** 0.5
        state[name] = value.to(tensor.dtype)
    path = Path(folder) / "weights.pt"
    torch.save(state, path)
    model = build()
    model.load_state_dict(torch.load(path, weights_only=True))
    return model.eval()
