"""The registered architectures: ``tinyvgg``, ``lenet`` and ``resnet9``.

Each is a plain ``nn.Module`` with two parts, ``features`` (convolutions; the part convlens
looks inside) and ``classifier`` (to logits), built from ``nn.Sequential`` with readable names
such as ``features.conv1`` and ``classifier.fc``. The flattened size is measured by running a
blank image through ``features``, so any input size the layers can take works.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn

from ..errors import ConfigError
from ..limits import MAX_MODEL_WIDTH, check_at_most
from .handle import eval_mode
from .registry import register_model


class Classifier(nn.Module):
    """``features`` then ``classifier``: images ``(N, C, H, W)`` -> logits ``(N, classes)``."""

    def __init__(self, features: nn.Sequential, classifier: nn.Sequential) -> None:
        super().__init__()
        self.features = features
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class Residual(nn.Module):
    """``x + body(x)``: the skip connection of ResNet; ``body`` keeps the shape."""

    def __init__(self, body: nn.Sequential) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Scale(nn.Module):
    """Multiply by a constant (ResNet-9's logit scale, which steadies early training)."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = float(factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


@register_model("tinyvgg")
def tinyvgg(
    in_channels: int,
    num_classes: int,
    input_size: tuple[int, int],
    width: int = 10,
    padding: int = 1,
    batchnorm: bool = False,
    dropout: float = 0.0,
) -> nn.Module:
    """Two VGG blocks (conv-relu-conv-relu-maxpool, twice) then one linear layer.

    The net of CNN Explainer (Wang et al. 2020), which uses ``width=10``, ``padding=0`` and
    64x64 RGB input. ``padding=1`` (the default) keeps small images such as 8x8 digits alive;
    ``batchnorm`` adds BatchNorm after each conv; ``dropout`` before the linear layer.
    """
    _check_positive(width=width)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    channels = in_channels
    index = 1
    for block in (1, 2):
        for _ in range(2):
            layers[f"conv{index}"] = nn.Conv2d(channels, width, 3, padding=padding,
                                               bias=not batchnorm)
            if batchnorm:
                layers[f"bn{index}"] = nn.BatchNorm2d(width)
            layers[f"relu{index}"] = nn.ReLU(inplace=True)
            channels = width
            index += 1
        layers[f"pool{block}"] = nn.MaxPool2d(2)
    features = nn.Sequential(layers)
    flat = _flat_size("tinyvgg", features, in_channels, input_size)
    head: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
    if dropout:
        head["dropout"] = nn.Dropout(dropout)
    head["fc"] = nn.Linear(flat, num_classes)
    return Classifier(features, nn.Sequential(head))


@register_model("lenet")
def lenet(
    in_channels: int,
    num_classes: int,
    input_size: tuple[int, int],
    width: int = 6,
) -> nn.Module:
    """LeNet-5 (LeCun et al. 1998) with ReLU and max pooling: 28x28 digits -> 10 classes.

    conv1 5x5 (padding 2) -> pool -> conv2 5x5 -> pool -> fc1 120 -> fc2 84 -> fc3. ``width``
    is conv1's channel count (6 in the paper; conv2 has 16/6 as many). Needs at least 12x12.
    """
    _check_positive(width=width)
    second = max(1, round(width * 16 / 6))
    features = nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(in_channels, width, 5, padding=2),
        relu1=nn.ReLU(inplace=True),
        pool1=nn.MaxPool2d(2),
        conv2=nn.Conv2d(width, second, 5),
        relu2=nn.ReLU(inplace=True),
        pool2=nn.MaxPool2d(2),
    ))
    flat = _flat_size("lenet", features, in_channels, input_size)
    classifier = nn.Sequential(OrderedDict(
        flatten=nn.Flatten(),
        fc1=nn.Linear(flat, 120),
        relu3=nn.ReLU(inplace=True),
        fc2=nn.Linear(120, 84),
        relu4=nn.ReLU(inplace=True),
        fc3=nn.Linear(84, num_classes),
    ))
    return Classifier(features, classifier)


@register_model("resnet9")
def resnet9(
    in_channels: int,
    num_classes: int,
    input_size: tuple[int, int],
    width: int = 64,
) -> nn.Module:
    """ResNet-9 for 32x32 colour images (Myrtle.ai's DAWNBench net, as in airbench).

    prep conv -> layer1 (conv, pool, residual of two convs) -> layer2 (conv, pool) -> layer3
    (conv, pool, residual) -> global max pool -> linear, logits scaled by 1/8. Channels are
    ``width`` x (1, 2, 4, 8); every conv is 3x3 + BatchNorm + ReLU. Needs at least 8x8 input.
    """
    _check_positive(width=width)
    w1, w2, w3, w4 = width, 2 * width, 4 * width, 8 * width
    features = nn.Sequential(OrderedDict(
        prep=_conv_bn(in_channels, w1),
        layer1=_stage(w1, w2, residual=True),
        layer2=_stage(w2, w3, residual=False),
        layer3=_stage(w3, w4, residual=True),
    ))
    _flat_size("resnet9", features, in_channels, input_size)
    classifier = nn.Sequential(OrderedDict(
        pool=nn.AdaptiveMaxPool2d(1),
        flatten=nn.Flatten(),
        fc=nn.Linear(w4, num_classes, bias=False),
        scale=Scale(0.125),
    ))
    return Classifier(features, classifier)


def _conv_bn(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict(
        conv=nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        bn=nn.BatchNorm2d(out_channels),
        relu=nn.ReLU(inplace=True),
    ))


def _stage(in_channels: int, out_channels: int, residual: bool) -> nn.Sequential:
    parts: OrderedDict[str, nn.Module] = OrderedDict(
        conv=nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        bn=nn.BatchNorm2d(out_channels),
        relu=nn.ReLU(inplace=True),
        pool=nn.MaxPool2d(2),
    )
    if residual:
        parts["res"] = Residual(nn.Sequential(OrderedDict(
            block1=_conv_bn(out_channels, out_channels),
            block2=_conv_bn(out_channels, out_channels),
        )))
    return nn.Sequential(parts)


def _check_positive(**values: int) -> None:
    """Each setting (a ``width``) at least 1 and at most
    :data:`~convlens.limits.MAX_MODEL_WIDTH` channels."""
    for name, value in values.items():
        if int(value) < 1:
            raise ConfigError(f"{name} must be at least 1; got {value}")
        check_at_most(int(value), MAX_MODEL_WIDTH, name, "use fewer channels")


def _flat_size(
    name: str, features: nn.Module, in_channels: int, input_size: tuple[int, int]
) -> int:
    """Features per image after ``features`` for ``input_size`` (H, W) inputs; a clear error
    when the image is too small for the layers."""
    try:
        with eval_mode(features), torch.no_grad():
            out = features(torch.zeros(1, in_channels, *input_size))
    except RuntimeError:
        raise ConfigError(
            f"model {name!r} cannot take {input_size[0]}x{input_size[1]} images: they shrink "
            "to nothing in its layers; use larger images or pick another model"
        ) from None
    if out.numel() == 0:
        raise ConfigError(f"model {name!r} cannot take {input_size[0]}x{input_size[1]} images")
    return int(out[0].numel())
