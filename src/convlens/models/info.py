"""What convlens knows about a model: one :class:`ModelInfo` for every model it opens.

A convlens checkpoint's ``model.json`` holds all of it (:meth:`ModelInfo.to_dict`, read back by
:meth:`ModelInfo.from_dict`, which checks every field); any other model fills in what its file
says and leaves the rest ``None``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ..errors import ModelError
from ..limits import MAX_MODEL_WIDTH
from ..version import __version__
from ..wording import clipped, plural, whole_number

FORMAT = "convlens-model"
FORMAT_VERSION = 1
MAX_INPUT_CHANNELS = 16
"""Most input channels a checkpoint may declare (images have 1, 3 or 4)."""
MAX_INPUT_SIDE = 4096
"""Largest input side, in pixels, a checkpoint may declare (its model is built and run on a
blank image of that size when it is opened)."""
MAX_CLASSES = 100_000
"""Most classes a checkpoint may name."""


CHECKPOINT_FIELDS = ("architecture", "in_channels", "input_size", "class_names", "mean", "std")
"""What a convlens checkpoint always knows (``model.json`` must hold each)."""


@dataclass
class ModelInfo:
    """What is known about a model: what it is, the input it takes and its classes.

    ``in_channels`` is the image channels it takes; ``input_size`` ``(H, W)`` in pixels (images
    are resized to it); ``mean``/``std`` one value per input channel, of the training images in
    [0, 1] (inputs are normalized with them); ``class_names`` its outputs' names.
    ``architecture`` is the registry name and ``arch_kwargs`` its settings (``width=...``);
    ``metrics`` the training results (``val_accuracy``, ...). A convlens checkpoint knows all of
    it; for other models a field the file does not tell is ``None``: any channel count, images
    keep their own size, no normalization, outputs named by number.

    >>> ModelInfo(in_channels=3).input_size is None
    True
    """

    architecture: str | None = None
    in_channels: int | None = None
    input_size: tuple[int, int] | None = None
    class_names: list[str] | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    arch_kwargs: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    convlens_version: str = __version__

    def __post_init__(self) -> None:
        if self.in_channels is not None:
            self.in_channels = int(self.in_channels)
        if self.input_size is not None:
            self.input_size = (int(self.input_size[0]), int(self.input_size[1]))
        if self.class_names is not None:
            self.class_names = [str(name) for name in self.class_names]
        if (self.mean is None) != (self.std is None):
            raise ModelError("give mean and std together (one value per input channel each)")
        if self.mean is None or self.std is None:
            return
        self.mean = [float(value) for value in self.mean]
        self.std = [float(value) for value in self.std]
        if self.in_channels is not None and (len(self.mean) != self.in_channels
                                             or len(self.std) != self.in_channels):
            raise ModelError(f"mean and std need one value per channel ({self.in_channels}); "
                             f"got {len(self.mean)} and {len(self.std)}")
        if any(not value > 0 for value in self.std):
            raise ModelError(f"std values must be positive; got {self.std}")

    @property
    def num_classes(self) -> int | None:
        """How many classes the model names (``None``: it does not name them)."""
        return None if self.class_names is None else len(self.class_names)

    def missing(self) -> list[str]:
        """The fields a checkpoint needs that are unknown here (empty for a checkpoint's)."""
        return [name for name in CHECKPOINT_FIELDS if getattr(self, name) is None]

    def to_dict(self) -> dict:
        """JSON-ready dict, tagged with the checkpoint format."""
        data = asdict(self)
        data["input_size"] = None if self.input_size is None else list(self.input_size)
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **data}

    @classmethod
    def from_dict(cls, data: dict, source: str = "model.json") -> ModelInfo:
        """Inverse of :meth:`to_dict`. Every field is checked, and anything else (a wrong type,
        null, a non-finite number, a width over :data:`~convlens.limits.MAX_MODEL_WIDTH`, nested
        junk) raises :class:`ModelError` naming the field: ``"model.json: 'input_size' must be
        two positive whole numbers; got null"``."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ModelError(f"{source} is not a convlens model description "
                             f"(no \"format\": \"{FORMAT}\")")
        version = _whole(data.get("format_version", 0), source, "format_version", 0, None)
        if version > FORMAT_VERSION:
            raise ModelError(f"{source} has format version {version}; this convlens reads up "
                             f"to {FORMAT_VERSION}: upgrade convlens")
        missing = [name for name in CHECKPOINT_FIELDS if name not in data]
        if missing:
            raise ModelError(f"{source} lacks {', '.join(missing)}")
        architecture = data["architecture"]
        if not isinstance(architecture, str) or not architecture.strip():
            raise ModelError(f"{source}: 'architecture' must be a model name; got "
                             f"{_show(architecture)}")
        channels = _whole(data["in_channels"], source, "in_channels", 1, MAX_INPUT_CHANNELS)
        size = data["input_size"]
        if (not isinstance(size, list) or len(size) != 2
                or not all(_is_whole(side) and 1 <= side <= MAX_INPUT_SIDE for side in size)):
            raise ModelError(f"{source}: 'input_size' must be two positive whole numbers (H, W) "
                             f"of at most {MAX_INPUT_SIDE}; got {_show(size)}")
        return cls(
            architecture=architecture,
            in_channels=channels,
            input_size=(int(size[0]), int(size[1])),
            class_names=_class_names(data["class_names"], source),
            mean=_numbers(data["mean"], source, "mean", channels),
            std=_numbers(data["std"], source, "std", channels, positive=True),
            arch_kwargs=_arch_kwargs(data.get("arch_kwargs"), source),
            metrics=_metrics(data.get("metrics"), source),
            convlens_version=_show(data.get("convlens_version", "unknown"), quote=False),
        )


def _is_whole(value: object) -> bool:
    """True for an ``int`` (not a bool) or a finite float with no fraction (JSON ``3.0``)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _whole(value: object, source: str, name: str, low: int, high: int | None) -> int:
    """``value`` as an int in ``low..high`` (``high`` None: no upper bound), else an error naming
    the field."""
    number = int(value) if isinstance(value, (int, float)) and _is_whole(value) else None
    if number is None or number < low or (high is not None and number > high):
        bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise ModelError(f"{source}: {name!r} must be a whole number {bound}; got {_show(value)}")
    return number


def _numbers(values: object, source: str, name: str, count: int, positive: bool = False
             ) -> list[float]:
    """A list of ``count`` finite numbers (each > 0 when ``positive``), else an error naming
    the field."""
    kind = "positive" if positive else "finite"
    if (not isinstance(values, list) or len(values) != count or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
            and (not positive or v > 0) for v in values)):
        raise ModelError(f"{source}: {name!r} must be {plural(count, kind + ' number')}, one "
                         f"per input channel; got {_show(values)}")
    return [float(v) for v in values]


def _class_names(names: object, source: str) -> list[str]:
    """At least two class names, each text (or a whole number, kept as text)."""
    if not isinstance(names, list) or not 2 <= len(names) <= MAX_CLASSES:
        raise ModelError(f"{source}: 'class_names' must be a list of 2 to {MAX_CLASSES} names; "
                         f"got {_show(names)}")
    for index, name in enumerate(names):
        if not (isinstance(name, str) or _is_whole(name)) or (
                isinstance(name, str) and not 1 <= len(name.strip()) <= len(name) <= 1000):
            raise ModelError(f"{source}: 'class_names' item {index} must be a name (text of 1 "
                             f"to 1000 characters); got {_show(name)}")
    return [str(int(name)) if not isinstance(name, str) else name for name in names]


def _arch_kwargs(values: object, source: str) -> dict:
    """Architecture settings: names mapped to a number, true/false or text; ``width`` a whole
    number up to :data:`~convlens.limits.MAX_MODEL_WIDTH`."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ModelError(f"{source}: 'arch_kwargs' must be an object of settings; got "
                         f"{_show(values)}")
    for key, value in values.items():
        where = f"'arch_kwargs.{_show(key, quote=False)}'"
        if not key.isidentifier():
            raise ModelError(f"{source}: {where} is not a setting name")
        if key == "width":
            if not _is_whole(value) or not 1 <= value <= MAX_MODEL_WIDTH:
                raise ModelError(f"{source}: {where} must be a whole number from 1 to "
                                 f"{MAX_MODEL_WIDTH}; got {_show(value)}")
        elif isinstance(value, float) and not math.isfinite(value):
            raise ModelError(f"{source}: {where} must be a finite number; got {_show(value)}")
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**31:
            raise ModelError(f"{source}: {where} is {_show(value)}, too large for a setting")
        elif not isinstance(value, (bool, int, float, str)) or (
                isinstance(value, str) and len(value) > 200):
            raise ModelError(f"{source}: {where} must be a number, true/false or a short text; "
                             f"got {_show(value)}")
    return {key: int(value) if key == "width" else value for key, value in values.items()}


def _metrics(values: object, source: str) -> dict:
    """The training results: an object; ``data`` (what the model was trained on) is text and
    ``split_seed`` a whole number where present, since ``evaluate`` uses them."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ModelError(f"{source}: 'metrics' must be an object; got {_show(values)}")
    if values.get("data") is not None and not isinstance(values["data"], str):
        raise ModelError(f"{source}: 'metrics.data' must be a data spec (text); got "
                         f"{_show(values['data'])}")
    if "split_seed" in values:
        _whole(values["split_seed"], source, "metrics.split_seed", 0, 2**32 - 1)
    return dict(values)


def _show(value: object, limit: int = 40, quote: bool = True) -> str:
    """What a field held, shortly, in JSON's words (null, true, a list of 3 items)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return whole_number(value, most_bits=100)
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return f"an object of {plural(len(value), 'entry', 'entries')}"
    if isinstance(value, list) and (len(value) > 4 or any(isinstance(v, (list, dict))
                                                           for v in value)):
        return f"a list of {plural(len(value), 'item')}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v, 12) for v in value) + "]"
    return clipped(" ".join(str(value).split()), limit, quote=quote and isinstance(value, str))
